"""The tray's line to guardd: subscribe, read the state, read it again when guardd says
something happened; reconnect with a growing pause when guardd is gone.

The tray never polls in a loop: it waits on the subscription. It reads the state again only
when an event comes, every second while a drive is being scanned (the progress is in the
devices view), and at the moments an approval starts to run out or ends.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path

from guardd.errors import ErrorCode, GuarddError
from guardd.ipc.client import Client
from guardd.ipc.protocol import Op
from guardd.ipc.subscription import Subscription
from tray.messages import EXPIRY_WARNING_S
from tray.state import TrayState
from tray.views import (
    Folder,
    devices_from,
    folders_from,
    requests_from,
)

log = logging.getLogger(__name__)

SCAN_REFRESH_S = 1.0
MAX_BURST = 1000  # events read in one go before the state is read again


class Backoff:
    """Pauses between reconnection attempts: 0.5 s, doubling, at most `longest`."""

    def __init__(self, first: float = 0.5, longest: float = 10.0) -> None:
        self._first = first
        self._longest = longest
        self._next = first

    def next(self) -> float:
        """The pause before the next attempt."""
        pause = self._next
        self._next = min(self._next * 2, self._longest)
        return pause

    def reset(self) -> None:
        """Connected: start from the shortest pause next time."""
        self._next = self._first


def _cloud(client: Client) -> tuple[Folder, ...] | None:
    try:
        return folders_from(client.call(Op.CLOUD))
    except GuarddError as e:
        if e.code is ErrorCode.UNKNOWN_REQUEST:
            return None  # this guardd has no cloud folders: no section in the menu
        raise


def snapshot(client: Client) -> TrayState:
    """Everything the tray shows, read from guardd now."""
    return TrayState(
        connected=True,
        devices=devices_from(client.call(Op.DEVICES)),
        folders=_cloud(client),
        requests=requests_from(client.call(Op.REQUESTS)),
    )


def next_wake(state: TrayState, now: float) -> float | None:
    """Seconds until the state should be read again without an event (None: only on events)."""
    if any(d.verdict == "scanning" for d in state.devices):
        return SCAN_REFRESH_S
    moments = [
        moment
        for r in state.requests
        if r.state == "approved" and r.until is not None
        for moment in (r.until - EXPIRY_WARNING_S, r.until)
        if moment > now
    ]
    return max(SCAN_REFRESH_S, min(moments) - now + 0.5) if moments else None


class Link(threading.Thread):
    """Keeps the tray's state current; calls `publish` (in this thread) with each new one."""

    def __init__(self, path: Path, publish: Callable[[TrayState], None]) -> None:
        super().__init__(name="guardd-link", daemon=True)
        self._path = path
        self._client = Client(path, timeout=10.0)
        self._publish = publish
        self._stop = threading.Event()
        self._backoff = Backoff()

    def stop(self) -> None:
        """Stop after the current wait."""
        self._stop.set()

    def run(self) -> None:
        """Connect, follow, reconnect: until stopped."""
        while not self._stop.is_set():
            try:
                with Subscription(self._path) as events:
                    log.info("connected to guardd at %s", self._path)
                    self._backoff.reset()
                    self._follow(events)
            except GuarddError as e:
                self._publish(TrayState(connected=False, problem=e.message))
            except Exception as e:  # a bug here must not leave a frozen icon behind
                log.exception("unexpected error talking to guardd")
                self._publish(TrayState(connected=False, problem=f"internal error: {e}"))
            self._stop.wait(self._backoff.next())

    def _follow(self, events: Subscription) -> None:
        state = snapshot(self._client)
        self._publish(state)
        while not self._stop.is_set():
            event = events.next_event(next_wake(state, time.time()))
            burst = 0
            while event is not None and burst < MAX_BURST:
                event = events.next_event(0)  # a burst of events: one read of the state
                burst += 1
            state = snapshot(self._client)
            self._publish(state)
