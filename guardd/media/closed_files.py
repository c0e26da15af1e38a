"""What changes on a ready drive, from watchdog (inotify): each change is scanned.

A file closed after writing, or renamed into place, is scanned when it is closed. A new or
moved-in folder is scanned whole: files copied into it before watchdog could watch it are
reported only as (synthetic) creations, so creations are scanned too, and a file still being
written is scanned again when it is closed. Files only read are not: they were scanned
before the drive was ready.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable

from watchdog.events import (
    DirCreatedEvent,
    DirMovedEvent,
    FileClosedEvent,
    FileCreatedEvent,
    FileMovedEvent,
    FileSystemEvent,
    FileSystemEventHandler,
)
from watchdog.observers import Observer
from watchdog.observers.api import BaseObserver, ObservedWatch


class _Closed(FileSystemEventHandler):
    def __init__(self, closed: Callable[[str], None]) -> None:
        self._closed = closed

    def on_any_event(self, event: FileSystemEvent) -> None:
        if isinstance(event, (FileMovedEvent, DirMovedEvent)):
            self._closed(os.fsdecode(event.dest_path))
        elif isinstance(event, (FileClosedEvent, FileCreatedEvent, DirCreatedEvent)):
            self._closed(os.fsdecode(event.src_path))


class ClosedFileWatcher:
    """One watchdog observer for every ready drive; callbacks come from its thread."""

    def __init__(self) -> None:
        self._observer: BaseObserver = Observer()
        self._observer.daemon = True
        self._observer.start()

    def watch(self, folder: str, closed: Callable[[str], None]) -> ObservedWatch:
        """Watch a mounted drive, all its folders."""
        return self._observer.schedule(_Closed(closed), folder, recursive=True)

    def unwatch(self, handle: object) -> None:
        """Stop watching (the drive was unmounted, held again or unplugged)."""
        if isinstance(handle, ObservedWatch):
            with contextlib.suppress(KeyError):  # already gone with its folder
                self._observer.unschedule(handle)

    def stop(self) -> None:
        """Stop the observer thread."""
        self._observer.stop()
        self._observer.join(timeout=5)
