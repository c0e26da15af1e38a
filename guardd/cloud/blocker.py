"""Carrying out a block or its end on a folder already open by descriptor: record first
(synced), then lock; restore exactly from the record, then forget it."""

from __future__ import annotations

import os
from collections.abc import Callable

from guardd.audit import AuditLog
from guardd.cloud import lock
from guardd.cloud.beneath import BeneathError, open_dir
from guardd.cloud.crawl import Seen
from guardd.cloud.folder import found_json
from guardd.cloud.roots import Place
from guardd.store.cloud import BlockRow, CloudBlocks
from rules import Found

NO_RECORD = (
    "the folder is already locked and guardd has no record of how it was: "
    "IT must give it back its owner and permissions by hand"
)


class Blocker:
    """Blocks and restores folders; the store holds what each was like before."""

    def __init__(self, blocks: CloudBlocks, audit: AuditLog, clock: Callable[[], float]) -> None:
        self.blocks = blocks
        self._audit = audit
        self._clock = clock

    def block(self, place: Place, fd: int, seen: Seen, found: Found, row: BlockRow | None) -> str:
        """Record, then lock; '' when the folder is blocked, else what went wrong."""
        try:
            if row is None:
                if lock.is_locked(fd):
                    return NO_RECORD  # never record the locked state as the original
                recorded = lock.record(fd)
                record = recorded.to_json()
                now = self._clock()
                self.blocks.add(
                    BlockRow(found.path, seen.dev, seen.ino, record, found_json(found), now)
                )
            elif row.path != found.path:
                self.blocks.moved(seen.dev, seen.ino, found.path)
            if not lock.is_locked(fd):
                lock.lock(fd)
        except OSError as e:
            return f"could not block the folder: {e.strerror or e}"
        if not _still_at(place, seen):
            return self._undo_moved(fd, seen, found)
        return ""

    def _undo_moved(self, fd: int, seen: Seen, found: Found) -> str:
        """The folder left its place while it was being blocked (a rename or a symlink swap):
        put it back as it was, so nothing outside the homes keeps a change of guardd's."""
        row = self.blocks.by_inode(seen.dev, seen.ino)
        if row is not None:
            lock.restore(fd, lock.Recorded.from_json(row.recorded))
            self.blocks.remove(seen.dev, seen.ino)
        self._audit.append("cloud.moved_away", {"path": found.path, "provider": found.provider})
        return "the folder was moved while guardd was blocking it"

    def unblock(self, fd: int, found: Found, row: BlockRow, owner: int) -> str:
        """Restore exactly what was recorded, then forget the block."""
        try:
            recorded = lock.Recorded.from_json(row.recorded)
            lock.restore(fd, recorded)
        except (OSError, ValueError, KeyError) as e:
            message = getattr(e, "strerror", None) or str(e)
            self._audit.append("cloud.restore_failed", {"path": found.path, "error": message})
            return f"could not restore the folder: {message}"
        self.blocks.remove(row.dev, row.ino)
        self._audit.append(
            "cloud.unblocked",
            {
                "path": found.path,
                "provider": found.provider,
                "uid": owner,
                "restored": {"uid": recorded.uid, "gid": recorded.gid, "mode": oct(recorded.mode)},
            },
        )
        return ""


def _still_at(place: Place, seen: Seen) -> bool:
    try:
        fd = open_dir(place.fd, place.relative)
    except (OSError, BeneathError):
        return False
    try:
        st = os.fstat(fd)
        return (st.st_dev, st.st_ino) == (seen.dev, seen.ino)
    finally:
        os.close(fd)
