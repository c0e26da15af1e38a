"""Watch this mount namespace's mount table: a pollable fd and the mounts added or removed.

Why an epoll of our own: /proc/self/mountinfo signals a change as EPOLLPRI|EPOLLERR (its
poll always reports EPOLLIN, readable or not), while asyncio's `loop.add_reader` registers
EPOLLIN only, so it would fire all the time and never tell a change. An epoll fd watching
mountinfo for EPOLLPRI|EPOLLERR is itself readable (EPOLLIN) exactly when a change is
pending, which is what add_reader can wait on.
"""

from __future__ import annotations

import os
import select
from types import TracebackType

from guardd.media.mounts import Mount, read_mounts

# More than enough: the kernel reports a change once per poll of the file, however many.
_MAX_DRAIN_ROUNDS = 16


class MountWatcher:
    """Mount table changes since the last `changes()` (the first: since construction)."""

    def __init__(self, path: str = "/proc/self/mountinfo") -> None:
        self._path = path
        self._fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            self._epoll = select.epoll()
            self._epoll.register(self._fd, select.EPOLLPRI | select.EPOLLERR)
            self._known = set(read_mounts(path))
        except BaseException:
            self.close()
            raise

    def fileno(self) -> int:
        """The epoll fd: readable while a mount change has not been collected by changes()."""
        return self._epoll.fileno()

    def _drain(self) -> None:
        """Collect the pending change notification so the epoll fd stops being readable.

        The kernel reports a change to the first poll of the mountinfo fd after it and
        then forgets it. That first poll may already have been the event loop's own poll
        of our epoll fd (epoll asks the watched file while it is polled), so this may
        find nothing: changes() compares mount tables rather than counting events.
        """
        for _ in range(_MAX_DRAIN_ROUNDS):
            if not self._epoll.poll(0):
                return

    def changes(self) -> tuple[list[Mount], list[Mount]]:
        """(mounts added, mounts removed) since the last call, each sorted by mount id.

        A remount shows as its old Mount removed and its new one added (same mount id,
        other options), so a hold lifted behind guardd's back is visible here too.
        """
        # Drain first, then read: a change made after the read signals again.
        self._drain()
        current = set(read_mounts(self._path))
        added = sorted(current - self._known, key=_order)
        removed = sorted(self._known - current, key=_order)
        self._known = current
        return added, removed

    def close(self) -> None:
        """Close the epoll and the mountinfo fd; safe to call more than once."""
        epoll = getattr(self, "_epoll", None)
        if epoll is not None:
            epoll.close()
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> MountWatcher:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


def _order(mount: Mount) -> tuple[int, str]:
    return mount.mount_id, mount.mountpoint
