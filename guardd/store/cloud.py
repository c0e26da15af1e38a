"""The blocked cloud-sync folders, as the store keeps them.

A block is recorded here (with the folder's owner, mode and ACLs) before the folder is
touched, and forgotten only after it was restored: a kill -9 at any moment leaves either a
record of a folder that may still need blocking, or one that may still need restoring; both
are finished at the next start.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from typing import Any

_SCHEMA = """
CREATE TABLE IF NOT EXISTS cloud_blocks (
    path TEXT PRIMARY KEY,
    dev INTEGER NOT NULL,
    ino INTEGER NOT NULL,
    recorded TEXT NOT NULL,
    found TEXT NOT NULL,
    blocked_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS cloud_blocks_inode ON cloud_blocks(dev, ino);
"""


@dataclass(frozen=True)
class BlockRow:
    """One blocked folder: where, which inode, what it was like, what was found in it."""

    path: str
    dev: int
    ino: int
    recorded: dict[str, Any]
    found: dict[str, Any]
    blocked_at: float


class CloudBlocks:
    """Typed access to the cloud_blocks table (on the store's connection, loop thread)."""

    def __init__(self, connection: sqlite3.Connection) -> None:
        self._db = connection
        self._db.executescript(_SCHEMA)

    def add(self, row: BlockRow) -> None:
        """Record a block before it is carried out."""
        self._db.execute(
            "INSERT OR REPLACE INTO cloud_blocks(path, dev, ino, recorded, found, blocked_at) "
            "VALUES (?,?,?,?,?,?)",
            (
                row.path,
                row.dev,
                row.ino,
                json.dumps(row.recorded, sort_keys=True),
                json.dumps(row.found, sort_keys=True),
                row.blocked_at,
            ),
        )

    def moved(self, dev: int, ino: int, path: str) -> None:
        """The blocked folder now lives at `path` (renamed while blocked)."""
        with self._db:
            self._db.execute("DELETE FROM cloud_blocks WHERE path = ? AND ino != ?", (path, ino))
            self._db.execute(
                "UPDATE cloud_blocks SET path = ? WHERE dev = ? AND ino = ?", (path, dev, ino)
            )

    def remove(self, path: str) -> None:
        """Forget a block once the folder was restored."""
        self._db.execute("DELETE FROM cloud_blocks WHERE path = ?", (path,))

    def by_inode(self, dev: int, ino: int) -> BlockRow | None:
        """The block of this very folder, wherever it was recorded."""
        cur = self._db.execute(
            "SELECT path, dev, ino, recorded, found, blocked_at FROM cloud_blocks "
            "WHERE dev = ? AND ino = ?",
            (dev, ino),
        )
        row = cur.fetchone()
        return _row(row) if row else None

    def all(self) -> list[BlockRow]:
        """Every recorded block."""
        cur = self._db.execute(
            "SELECT path, dev, ino, recorded, found, blocked_at FROM cloud_blocks ORDER BY path"
        )
        return [_row(r) for r in cur.fetchall()]


def _row(r: tuple[Any, ...]) -> BlockRow:
    return BlockRow(r[0], r[1], r[2], json.loads(r[3]), json.loads(r[4]), r[5])
