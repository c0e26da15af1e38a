"""The pystray icon: the adapter between the pure menu model and a real tray.

Backend: PYSTRAY_BACKEND when set; else appindicator when a StatusNotifier host is on the
session bus (GNOME with the AppIndicator extension, KDE), else gtk (an XEmbed tray such as
trayer, xfce4-panel or LXDE's). The xorg backend has no menu, so it is never chosen.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from typing import Any

import gi

gi.require_version("Gio", "2.0")
from gi.repository import Gio, GLib  # noqa: E402 - gi needs its version set first
from PIL import Image  # noqa: E402

from tray.menu import Action, Entry  # noqa: E402

log = logging.getLogger(__name__)

SNI_WATCHER = "org.kde.StatusNotifierWatcher"
EMBED_CHECK_S = 5


class NoTrayError(Exception):
    """No tray can show the icon here (no display, no GTK)."""


def choose_backend() -> str:
    """The pystray backend to use (see the module's docstring)."""
    chosen = os.environ.get("PYSTRAY_BACKEND")
    if chosen in ("gtk", "appindicator"):
        return chosen
    try:
        bus = Gio.bus_get_sync(Gio.BusType.SESSION, None)
        reply = bus.call_sync(
            "org.freedesktop.DBus",
            "/org/freedesktop/DBus",
            "org.freedesktop.DBus",
            "NameHasOwner",
            GLib.Variant("(s)", (SNI_WATCHER,)),
            GLib.VariantType("(b)"),
            Gio.DBusCallFlags.NONE,
            2000,
            None,
        )
    except GLib.Error:
        return "gtk"
    return "appindicator" if reply.unpack()[0] else "gtk"


class _NoPystrayNotifier:
    """Stands in for pystray's own notifier, which the tray does not use (tray.notifier sends
    its notifications) and which would stop the icon from showing when there is no session
    bus."""

    def notify(self, *args: object) -> None:
        """Nothing: the tray's notifications go through tray.notifier."""

    def hide(self) -> None:
        """Nothing to hide."""


def _import_pystray(backend: str) -> Any:
    os.environ["PYSTRAY_BACKEND"] = backend
    try:
        import pystray  # noqa: PLC0415 - the backend must be chosen before the import
        from pystray._util import notify_dbus  # noqa: PLC0415 - see _NoPystrayNotifier
    except (ImportError, ValueError) as e:
        raise NoTrayError(f"pystray's {backend} backend cannot start: {e}") from None
    notify_dbus.Notifier = _NoPystrayNotifier
    return pystray


class TrayIcon:
    """The shield in the tray, its tooltip and its menu."""

    def __init__(self, image: Image.Image, title: str, on_action: Callable[[Action], None]):
        if not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
            raise NoTrayError("there is no screen to show it on")
        self.backend = choose_backend()
        self._pystray = _import_pystray(self.backend)
        self._on_action = on_action
        self._icon = self._pystray.Icon("guard-tray", image, title)
        self._pixels = image.tobytes()

    def _item(self, entry: Entry) -> Any:
        pystray = self._pystray
        if entry.children:
            submenu = pystray.Menu(*(self._item(c) for c in entry.children))
            return pystray.MenuItem(entry.label, submenu)
        if entry.label == "-":
            return pystray.Menu.SEPARATOR
        action = entry.action
        if action is None:
            return pystray.MenuItem(entry.label, None, enabled=False)
        return pystray.MenuItem(entry.label, lambda: self._on_action(action))

    def show(self, image: Image.Image, title: str, menu: tuple[Entry, ...]) -> None:
        """Show a state (call in the GLib main loop's thread)."""
        pixels = image.tobytes()
        if pixels != self._pixels:  # pystray writes a file per new icon: only when it changes
            self._icon.icon = image
            self._pixels = pixels
        self._icon.title = title
        self._set_tooltip(title)
        self._icon.menu = self._pystray.Menu(*(self._item(e) for e in menu))
        self._icon.update_menu()

    def _set_tooltip(self, text: str) -> None:
        # pystray's gtk backend sets the StatusIcon's title, which no tray shows: the tooltip
        # is what people see when they point at the icon.
        status_icon = getattr(self._icon, "_status_icon", None)
        if status_icon is not None:
            status_icon.set_tooltip_text(text)

    def embedded(self) -> bool | None:
        """Whether a tray shows the icon (None: this backend cannot tell)."""
        status_icon = getattr(self._icon, "_status_icon", None)
        return None if status_icon is None else bool(status_icon.is_embedded())

    def run(self, setup: Callable[[], None]) -> None:
        """Show the icon and run the main loop until stop()."""

        def started(icon: Any) -> None:
            icon.visible = True
            setup()

        self._icon.run(setup=started)

    def stop(self) -> None:
        """End the main loop."""
        self._icon.stop()
