"""Content hashes clamd already found clean, so a medium seen before rescans fast.

Only clean results are kept, and each under the database version that judged it: a new
virus database (a new version) makes every earlier entry useless, since a file clean
yesterday may match a signature published today. A hash is of the full content, so a cached
answer applies to any file with exactly those bytes, whatever its name or medium.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
from collections.abc import Iterable
from pathlib import Path

_SCHEMA = """
CREATE TABLE IF NOT EXISTS scan_cache (
    sha256 BLOB NOT NULL,
    db_version INTEGER NOT NULL,
    PRIMARY KEY (sha256, db_version)
) WITHOUT ROWID;
"""


class ScanCache:
    """The clean-hash cache in its own table of a SQLite file; usable from any thread."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o750)
        os.close(os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600))  # private to root
        # One connection shared by the scanner's workers: sqlite3 objects are not safe to use
        # from two threads at once, hence the lock around every use.
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._lock = threading.Lock()
        self._db.execute("PRAGMA busy_timeout=5000")  # the daemon's store writes the same file
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")  # losing the last few entries is harmless
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        """Close the connection."""
        with self._lock:
            self._db.close()

    def is_clean(self, sha256: bytes, db_version: int) -> bool:
        """Whether clamd with this database version found these exact bytes clean."""
        with self._lock:
            row = self._db.execute(
                "SELECT 1 FROM scan_cache WHERE sha256 = ? AND db_version = ?",
                (sha256, db_version),
            ).fetchone()
        return row is not None

    def remember_clean(self, sha256: bytes, db_version: int) -> None:
        """Record a clean verdict (never call this for anything but a clean one)."""
        with self._lock:
            self._db.execute(
                "INSERT OR IGNORE INTO scan_cache(sha256, db_version) VALUES (?, ?)",
                (sha256, db_version),
            )

    def remember_many(self, digests: Iterable[bytes], db_version: int) -> None:
        """remember_clean() for many digests, in one transaction (a scan writes them in
        batches: one commit per file would cost more than the look-ups)."""
        rows = [(digest, db_version) for digest in digests]
        if not rows:
            return
        with self._lock:
            try:
                self._db.execute("BEGIN")
                self._db.executemany(
                    "INSERT OR IGNORE INTO scan_cache(sha256, db_version) VALUES (?, ?)", rows
                )
                self._db.execute("COMMIT")
            except BaseException:
                if self._db.in_transaction:  # never leave the shared connection mid-transaction
                    with contextlib.suppress(sqlite3.Error):
                        self._db.execute("ROLLBACK")
                raise

    def forget_other_versions(self, db_version: int) -> int:
        """Drop entries of every other database version (they can never match again, as
        versions only go up); return how many went."""
        with self._lock:
            cursor = self._db.execute("DELETE FROM scan_cache WHERE db_version != ?", (db_version,))
        return cursor.rowcount

    def __len__(self) -> int:
        with self._lock:
            row = self._db.execute("SELECT count(*) FROM scan_cache").fetchone()
        return int(row[0])
