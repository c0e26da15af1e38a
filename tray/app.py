"""The tray application: wires the link to guardd, the icon, the notifications and the
dialog. All drawing happens in the GLib main loop's thread; the link posts states to it."""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import gi

gi.require_version("GLib", "2.0")
from gi.repository import GLib  # noqa: E402 - gi needs its version set first

from guardd.errors import GuarddError  # noqa: E402
from guardd.ipc.client import Client  # noqa: E402
from guardd.ipc.protocol import Op  # noqa: E402
from tray import messages  # noqa: E402
from tray.artwork import shield  # noqa: E402
from tray.form import ExceptionForm, request_args  # noqa: E402
from tray.icon import EMBED_CHECK_S, NoTrayError, TrayIcon  # noqa: E402
from tray.link import Link  # noqa: E402
from tray.menu import Action, RequestException, ShowDetails, ShowPolicy, Target, build_menu  # noqa: E402
from tray.notices import notices  # noqa: E402
from tray.notifier import Notifier  # noqa: E402
from tray.state import TrayState, status_of  # noqa: E402

if TYPE_CHECKING:
    from tray.dialog import ExceptionDialog

log = logging.getLogger(__name__)
STILL_RUNNING = "guard-tray keeps running and sends its messages as desktop notifications"

STARTING = TrayState(connected=False, problem="starting")


class TrayApp:
    """The running tray."""

    def __init__(self, socket: Path) -> None:
        self._socket = socket
        self._notifier = Notifier()
        self._state = STARTING
        self._last_connected: TrayState | None = None
        self._icon: TrayIcon | None = None
        self._link = Link(socket, self._post)
        self._dialog: ExceptionDialog | None = None  # while it is open

    # -- states, from the link's thread to the main loop ----------------------------------

    def _post(self, state: TrayState) -> None:
        GLib.idle_add(self._show, state)

    def _show(self, state: TrayState) -> bool:
        if state == self._state:
            return False
        if state.connected:
            for notification in notices(self._last_connected, state):
                self._notifier.notify(notification)
            if not self._state.connected:
                log.info("guardd answers: %s", messages.tooltip(state))
            self._last_connected = state
        elif self._state.connected or self._state is STARTING:
            log.warning("guardd cannot be reached: %s", state.problem)
        if messages.tooltip(state) != messages.tooltip(self._state):
            log.info("now: %s", messages.tooltip(state))
        self._state = state
        self._draw()
        return False

    def _draw(self) -> None:
        if self._icon is not None:
            state = self._state
            self._icon.show(shield(status_of(state)), messages.tooltip(state), build_menu(state))

    # -- what the person chooses (main loop thread) ---------------------------------------

    def _on_action(self, action: Action) -> None:
        GLib.idle_add(self._act, action)

    def _act(self, action: Action) -> bool:
        from tray.dialog import ExceptionDialog, show_message  # noqa: PLC0415 - needs a display

        if isinstance(action, ShowPolicy):
            show_message("What is this?", messages.POLICY)
        elif isinstance(action, ShowDetails):
            self._notifier.notify(action.notification)
        elif isinstance(action, RequestException):
            self._ask(action.target, ExceptionDialog)
        return False

    def _ask(self, target: Target, dialog: type[ExceptionDialog]) -> None:
        if self._dialog is not None:  # one dialog at a time: bring the open one forward
            self._dialog.window.present()
            return
        self._dialog = dialog(target, lambda form: self._send(target, form))

    def _send(self, target: Target, form: ExceptionForm | None) -> None:
        self._dialog = None
        if form is None:
            return
        worker = threading.Thread(target=self._send_now, args=(target, form), daemon=True)
        worker.start()

    def _send_now(self, target: Target, form: ExceptionForm) -> None:
        try:
            Client(self._socket).call(Op.REQUEST, request_args(target, form))
            notification = messages.request_sent(target.name)
            log.info("request sent for %s %s", target.kind, target.key)
        except GuarddError as e:
            notification = messages.request_failed(target.name, e.message)
            log.warning("request for %s %s not sent: %s", target.kind, target.key, e.message)
        GLib.idle_add(self._notify, notification)

    def _notify(self, notification: messages.Notification) -> bool:
        self._notifier.notify(notification)
        return False

    # -- running --------------------------------------------------------------------------

    def run(self) -> int:
        """Show the icon (or, with no tray, only notifications) until SIGTERM or SIGINT."""
        state = self._state
        try:
            self._icon = TrayIcon(
                shield(status_of(state)), messages.tooltip(state), self._on_action
            )
        except NoTrayError as e:
            log.warning("no tray can show the icon here (%s); %s", e, STILL_RUNNING)
            return self._run_without_tray()
        log.info("showing the icon with pystray's %s backend", self._icon.backend)
        self._draw()
        self._on_signals(self._icon.stop)
        GLib.timeout_add_seconds(EMBED_CHECK_S, self._check_embedded)
        self._icon.run(setup=self._link.start)
        return 0

    def _run_without_tray(self) -> int:
        loop = GLib.MainLoop()
        self._on_signals(loop.quit)
        self._link.start()
        loop.run()
        return 0

    def _on_signals(self, stop: Callable[[], None]) -> None:
        def handler() -> bool:
            self._link.stop()
            stop()
            return False

        for sig in (signal.SIGTERM, signal.SIGINT):
            GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, sig, handler)

    def _check_embedded(self) -> bool:
        if self._icon is not None and self._icon.embedded() is False:
            log.warning(
                "no system tray is showing the icon (does this desktop have one?); %s",
                STILL_RUNNING,
            )
        return False
