"""Desktop notifications through the session bus (org.freedesktop.Notifications), which
works whether or not a tray can show the icon."""

from __future__ import annotations

import logging
from pathlib import Path

import gi

gi.require_version("Gio", "2.0")
from gi.repository import Gio, GLib  # noqa: E402 - gi needs its version set first

from tray.messages import APP_NAME, Notification, Urgency  # noqa: E402

log = logging.getLogger(__name__)

BUS_NAME = "org.freedesktop.Notifications"
OBJECT_PATH = "/org/freedesktop/Notifications"
URGENCY_BYTES = {Urgency.LOW: 0, Urgency.NORMAL: 1, Urgency.CRITICAL: 2}
TIMEOUT_MS = 5000


class Notifier:
    """Sends notifications; says once in the log when it cannot, then keeps trying quietly."""

    def __init__(self, icon: Path | None = None) -> None:
        self._icon = str(icon) if icon else ""
        self._bus: Gio.DBusConnection | None = None
        self._complained = False
        self._markup: bool | None = None  # whether the server reads the body as markup

    def _connection(self) -> Gio.DBusConnection | None:
        if self._bus is None or self._bus.is_closed():
            try:
                self._bus = Gio.bus_get_sync(Gio.BusType.SESSION, None)
            except GLib.Error as e:
                self._complain(f"no session bus ({e.message})")
                return None
        return self._bus

    def _reads_markup(self, bus: Gio.DBusConnection) -> bool:
        """Ask the server once whether it reads markup (then &, < and > must be escaped)."""
        if self._markup is None:
            try:
                reply = bus.call_sync(
                    BUS_NAME,
                    OBJECT_PATH,
                    BUS_NAME,
                    "GetCapabilities",
                    None,
                    GLib.VariantType("(as)"),
                    Gio.DBusCallFlags.NONE,
                    2000,
                    None,
                )
            except GLib.Error:
                return True  # no answer yet (the server may start later): escape, ask again
            self._markup = "body-markup" in reply.unpack()[0]
        return self._markup

    def _complain(self, why: str) -> None:
        if not self._complained:
            log.warning("cannot show desktop notifications: %s", why)
            self._complained = True

    def notify(self, notification: Notification) -> None:
        """Show a notification (asynchronously; never raises)."""
        bus = self._connection()
        if bus is None:
            return
        hints = {"urgency": GLib.Variant("y", URGENCY_BYTES[notification.urgency])}
        body = notification.body
        if self._reads_markup(bus):
            body = body.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        params = GLib.Variant(
            "(susssasa{sv}i)",
            (
                APP_NAME,
                0,
                self._icon,
                notification.title,
                body,
                [],
                hints,
                TIMEOUT_MS,
            ),
        )
        bus.call(
            BUS_NAME,
            OBJECT_PATH,
            BUS_NAME,
            "Notify",
            params,
            GLib.VariantType("(u)"),
            Gio.DBusCallFlags.NONE,
            5000,
            None,
            self._sent,
            notification.title,
        )

    def _sent(self, bus: Gio.DBusConnection, result: Gio.AsyncResult, title: str) -> None:
        try:
            bus.call_finish(result)
        except GLib.Error as e:
            self._complain(f"the notification service did not take {title!r} ({e.message})")
            return
        log.info("notified: %s", title)
