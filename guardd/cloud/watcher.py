"""Watching the homes with watchdog (inotify): changed paths reach the loop, debounced.

watchdog's threads only collect paths; the loop gets them in one batch a few milliseconds
after the first, so a sync client writing its markers one after another costs one look.
Each watch root has its own observer, so one root hitting the inotify watch limit does not
stop the others (the guard then re-crawls that root on a timer instead).
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass

from watchdog.events import (
    DirCreatedEvent,
    DirDeletedEvent,
    DirMovedEvent,
    FileClosedEvent,
    FileCreatedEvent,
    FileDeletedEvent,
    FileMovedEvent,
    FileSystemEvent,
    FileSystemEventHandler,
)
from watchdog.observers.inotify import InotifyObserver

log = logging.getLogger(__name__)

DEBOUNCE_S = 0.02
# What can make or unmake a sync folder: names appearing, moving or going, config files
# written. Opens, reads and attribute changes (guardd's own chmod among them) are not asked for.
EVENTS: list[type[FileSystemEvent]] = [
    DirCreatedEvent,
    FileCreatedEvent,
    DirMovedEvent,
    FileMovedEvent,
    DirDeletedEvent,
    FileDeletedEvent,
    FileClosedEvent,
]


@dataclass(frozen=True)
class WatchFailure:
    """A root that could not be watched, and why in plain words."""

    root: str
    reason: str
    limit_reached: bool


Change = tuple[str, bool]  # (path, is a folder)
# watchdog says only in its log that the kernel's queue overflowed (events lost) or that a
# watch could not be added; guardd listens there and crawls again.
_WATCHDOG_LOGGERS = ("watchdog.observers.inotify", "watchdog.observers.inotify_c")
_LOST_WORDS = ("overflow", "Unable to rebuild", "watch limit")


class _LostEvents(logging.Handler):
    """A log handler that turns watchdog's "events were lost" messages into a callback."""

    def __init__(self, lost: Callable[[], None]) -> None:
        super().__init__(level=logging.WARNING)
        self._lost = lost

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if any(word in message for word in _LOST_WORDS):
            self._lost()


class _Collector(FileSystemEventHandler):
    """watchdog's thread side: add paths to the pending set, wake the loop once."""

    def __init__(self, pending: _Pending) -> None:
        self._pending = pending

    def on_any_event(self, event: FileSystemEvent) -> None:
        paths = [(os.fsdecode(event.src_path), event.is_directory)]
        dest = getattr(event, "dest_path", "")
        if dest:
            paths.append((os.fsdecode(dest), event.is_directory))
        self._pending.add(paths)


class _Pending:
    """Paths waiting for the loop; the first one schedules a flush after DEBOUNCE_S."""

    def __init__(
        self, schedule: Callable[[Callable[[], None]], None], flush: Callable[[set[Change]], None]
    ) -> None:
        self._lock = threading.Lock()
        self._paths: set[Change] = set()
        self._schedule = schedule
        self._flush = flush

    def add(self, paths: list[Change]) -> None:
        with self._lock:
            first = not self._paths
            self._paths.update(paths)
        if first:
            self._schedule(self._drain)

    def _drain(self) -> None:
        with self._lock:
            paths, self._paths = self._paths, set()
        if paths:
            self._flush(paths)


class HomeWatcher:
    """One inotify observer per watch root, recursive, never following symlinks."""

    def __init__(
        self,
        roots: list[str],
        schedule: Callable[[Callable[[], None]], None],
        changed: Callable[[set[Change]], None],
        lost: Callable[[], None] = lambda: None,
    ) -> None:
        """`schedule(fn)` must run fn on the loop about DEBOUNCE_S later, from any thread;
        `changed(paths)` then runs on the loop. `lost()` is called (from watchdog's thread)
        when inotify dropped events or could not watch a new folder: the caller crawls."""
        self._roots = roots
        self._pending = _Pending(schedule, changed)
        self._observers: dict[str, InotifyObserver] = {}
        self._lost = _LostEvents(lost)

    def start(self) -> list[WatchFailure]:
        """Watch every root that can be watched; say which could not."""
        for name in _WATCHDOG_LOGGERS:
            logging.getLogger(name).addHandler(self._lost)
        failures = []
        for root in self._roots:
            failure = self._watch(root)
            if failure is not None:
                failures.append(failure)
        return failures

    def _watch(self, root: str) -> WatchFailure | None:
        observer = InotifyObserver()
        try:
            observer.schedule(
                _Collector(self._pending),
                root,
                recursive=True,
                event_filter=EVENTS,
                follow_symlink=False,
            )
            observer.start()
        except OSError as e:
            _stop(observer)
            limit = "limit" in str(e) or e.errno == 28  # ENOSPC: max_user_watches reached
            return WatchFailure(root, str(e.strerror or e), limit)
        self._observers[root] = observer
        return None

    def stop(self) -> None:
        """Stop every observer."""
        for observer in self._observers.values():
            _stop(observer)
        self._observers.clear()
        for name in _WATCHDOG_LOGGERS:
            logging.getLogger(name).removeHandler(self._lost)


def _stop(observer: InotifyObserver) -> None:
    try:
        observer.stop()
        if observer.is_alive():
            observer.join(timeout=2)
    except RuntimeError:  # never started
        pass
