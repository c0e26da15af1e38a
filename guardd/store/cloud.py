"""The blocked cloud-sync folders, as the store keeps them.

A record is keyed by the folder itself (device and inode), never by its path: a folder can be
renamed while blocked, and another folder can take its old name. A record is written (and
synced to disk) before the folder is touched, is never replaced by a later one for the same
folder, and is forgotten only after the folder was restored: a kill -9 or a power cut at any
moment leaves a record of a folder that may still need blocking or restoring, both finished
at the next start, and never a record of the blocked state as if it were the original.
Paths are stored as bytes (a home may hold names that are not UTF-8).
"""

from __future__ import annotations

import json
import os
import sqlite3
from dataclasses import dataclass
from typing import Any

_SCHEMA = """
CREATE TABLE IF NOT EXISTS cloud_locks (
    dev INTEGER NOT NULL,
    ino INTEGER NOT NULL,
    path BLOB NOT NULL,
    recorded TEXT NOT NULL,
    found TEXT NOT NULL,
    blocked_at REAL NOT NULL,
    PRIMARY KEY (dev, ino)
);
"""


@dataclass(frozen=True)
class BlockRow:
    """One blocked folder: which inode, where it was last seen, what it was like, what was
    found in it."""

    path: str
    dev: int
    ino: int
    recorded: dict[str, Any]
    found: dict[str, Any]
    blocked_at: float


class CloudBlocks:
    """Typed access to the cloud_locks table (on the store's connection, loop thread)."""

    def __init__(self, connection: sqlite3.Connection) -> None:
        self._db = connection
        self._db.executescript(_SCHEMA)

    def add(self, row: BlockRow) -> bool:
        """Record a block before it is carried out; False (and nothing written) when this
        folder already has a record: the first record is the folder's original state."""
        self._db.execute("PRAGMA synchronous=FULL")  # this one row must survive a power cut
        try:
            cur = self._db.execute(
                "INSERT OR IGNORE INTO cloud_locks(dev, ino, path, recorded, found, blocked_at) "
                "VALUES (?,?,?,?,?,?)",
                (
                    row.dev,
                    row.ino,
                    os.fsencode(row.path),
                    json.dumps(row.recorded, sort_keys=True),
                    json.dumps(row.found, sort_keys=True),
                    row.blocked_at,
                ),
            )
        finally:
            self._db.execute("PRAGMA synchronous=NORMAL")
        return cur.rowcount == 1

    def moved(self, dev: int, ino: int, path: str) -> None:
        """The blocked folder now lives at `path` (renamed while blocked)."""
        self._db.execute(
            "UPDATE cloud_locks SET path = ? WHERE dev = ? AND ino = ?",
            (os.fsencode(path), dev, ino),
        )

    def remove(self, dev: int, ino: int) -> None:
        """Forget a block once the folder was restored."""
        self._db.execute("DELETE FROM cloud_locks WHERE dev = ? AND ino = ?", (dev, ino))

    def by_inode(self, dev: int, ino: int) -> BlockRow | None:
        """The block of this very folder, wherever it was recorded."""
        cur = self._db.execute(
            "SELECT path, dev, ino, recorded, found, blocked_at FROM cloud_locks "
            "WHERE dev = ? AND ino = ?",
            (dev, ino),
        )
        row = cur.fetchone()
        return _row(row) if row else None

    def all(self) -> list[BlockRow]:
        """Every recorded block."""
        cur = self._db.execute(
            "SELECT path, dev, ino, recorded, found, blocked_at FROM cloud_locks ORDER BY path"
        )
        return [_row(r) for r in cur.fetchall()]


def _row(r: tuple[Any, ...]) -> BlockRow:
    return BlockRow(os.fsdecode(r[0]), r[1], r[2], json.loads(r[3]), json.loads(r[4]), r[5])
