"""The daemon's store: SQLite in WAL mode, one connection, owned by the event loop's thread.

It remembers what must survive a restart or a kill -9: the devices present and their verdicts,
and the volumes that got an admitted drive switched off again (so a restart does not switch
it back on before its volume is seen).
"""

from __future__ import annotations

import json
import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS devices (
    sys_path TEXT PRIMARY KEY,
    identity TEXT NOT NULL,
    view TEXT NOT NULL,
    updated REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS quarantined (
    sys_path TEXT PRIMARY KEY,
    identity TEXT NOT NULL,
    rule TEXT NOT NULL,
    reason TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS requests (
    id TEXT PRIMARY KEY,
    uid INTEGER NOT NULL,
    document TEXT NOT NULL,
    created REAL NOT NULL,
    state TEXT NOT NULL,
    detail TEXT NOT NULL DEFAULT '',
    until REAL
);
CREATE TABLE IF NOT EXISTS held_mounts (
    mount_id INTEGER NOT NULL,
    mountpoint TEXT NOT NULL,
    options TEXT NOT NULL,
    PRIMARY KEY (mount_id, mountpoint)
);
CREATE TABLE IF NOT EXISTS held_volumes (
    sys_path TEXT PRIMARY KEY,
    identity TEXT NOT NULL,
    volumes TEXT NOT NULL
);
"""


@dataclass(frozen=True)
class StoredRequest:
    """A request as the store keeps it, with where it stands."""

    id: str
    uid: int
    document: dict[str, Any]
    created: float
    state: str
    detail: str
    until: float | None


@dataclass(frozen=True)
class HeldVolume:
    """A volume remembered on a device that was switched off because of it."""

    name: str
    fs_type: str
    fs_uuid: str
    has_partition_table: bool


class Store:
    """Typed access to the daemon's SQLite database."""

    def __init__(self, connection: sqlite3.Connection) -> None:
        self._db = connection

    @classmethod
    def open(cls, path: Path) -> Store:
        """Open (creating if needed) the database at `path`, private to root."""
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o750)
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        os.close(fd)
        db = sqlite3.connect(path, isolation_level=None, check_same_thread=True)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")  # a committed row survives kill -9 in WAL mode
        db.execute("PRAGMA foreign_keys=ON")
        db.executescript(_SCHEMA)
        db.execute(
            "INSERT OR IGNORE INTO meta(key, value) VALUES ('schema', ?)", (str(SCHEMA_VERSION),)
        )
        return cls(db)

    @property
    def connection(self) -> sqlite3.Connection:
        """The one connection, for the store's other tables (guardd.store.cloud)."""
        return self._db

    def close(self) -> None:
        """Close the connection."""
        self._db.close()

    def put_device(self, sys_path: str, identity: str, view: dict[str, object], now: float) -> None:
        """Record a present device and its current verdict."""
        self._db.execute(
            "INSERT OR REPLACE INTO devices(sys_path, identity, view, updated) VALUES (?,?,?,?)",
            (sys_path, identity, json.dumps(view, ensure_ascii=True), now),
        )

    def remove_device(self, sys_path: str) -> None:
        """Forget a device that went away, and any volume held against it."""
        with self._db:
            self._db.execute("DELETE FROM devices WHERE sys_path = ?", (sys_path,))
            self._db.execute("DELETE FROM held_volumes WHERE sys_path = ?", (sys_path,))
            self._db.execute("DELETE FROM quarantined WHERE sys_path = ?", (sys_path,))

    def forget_absent(self, present: set[str]) -> None:
        """Drop rows for devices no longer present (they went away while guardd was stopped)."""
        for table in ("devices", "held_volumes", "quarantined"):
            rows = self._db.execute(f"SELECT sys_path FROM {table}").fetchall()  # noqa: S608
            gone = [(r[0],) for r in rows if r[0] not in present]
            self._db.executemany(f"DELETE FROM {table} WHERE sys_path = ?", gone)  # noqa: S608

    def hold_volumes(self, sys_path: str, identity: str, volumes: list[HeldVolume]) -> None:
        """Remember the volumes that got this device switched off."""
        payload = json.dumps([v.__dict__ for v in volumes], ensure_ascii=True)
        self._db.execute(
            "INSERT OR REPLACE INTO held_volumes(sys_path, identity, volumes) VALUES (?,?,?)",
            (sys_path, identity, payload),
        )

    def release_volumes(self, sys_path: str) -> None:
        """Forget held volumes (the rules now admit them)."""
        self._db.execute("DELETE FROM held_volumes WHERE sys_path = ?", (sys_path,))

    def held_volumes(self, sys_path: str, identity: str) -> list[HeldVolume]:
        """The volumes held against this device, if it is still the same device."""
        row = self._db.execute(
            "SELECT identity, volumes FROM held_volumes WHERE sys_path = ?", (sys_path,)
        ).fetchone()
        if row is None or row[0] != identity:
            return []
        return [_held(item) for item in json.loads(row[1])]

    def quarantine(self, sys_path: str, identity: str, rule: str, reason: str) -> None:
        """Remember that this device must stay off (a virus was found on it) until unplugged."""
        self._db.execute(
            "INSERT OR REPLACE INTO quarantined(sys_path, identity, rule, reason) VALUES (?,?,?,?)",
            (sys_path, identity, rule, reason),
        )

    def quarantined(self, sys_path: str, identity: str) -> tuple[str, str] | None:
        """(rule, reason) when this same device is quarantined."""
        row = self._db.execute(
            "SELECT identity, rule, reason FROM quarantined WHERE sys_path = ?", (sys_path,)
        ).fetchone()
        if row is None or row[0] != identity:
            return None
        return str(row[1]), str(row[2])

    def original_options(
        self, mount_id: int, mountpoint: str, options: frozenset[str]
    ) -> frozenset[str]:
        """The mount's options from before guardd first held it (recorded now if this is the
        first hold): after a restart, mountinfo shows the held flags, not the user's."""
        self._db.execute(
            "INSERT OR IGNORE INTO held_mounts(mount_id, mountpoint, options) VALUES (?,?,?)",
            (mount_id, mountpoint, json.dumps(sorted(options))),
        )
        row = self._db.execute(
            "SELECT options FROM held_mounts WHERE mount_id = ? AND mountpoint = ?",
            (mount_id, mountpoint),
        ).fetchone()
        return frozenset(str(o) for o in json.loads(row[0]))

    def forget_mounts_except(self, present: set[int]) -> None:
        """Drop recorded options of mounts that no longer exist (mount ids are reused)."""
        rows = self._db.execute("SELECT mount_id, mountpoint FROM held_mounts").fetchall()
        gone = [(r[0], r[1]) for r in rows if r[0] not in present]
        self._db.executemany("DELETE FROM held_mounts WHERE mount_id = ? AND mountpoint = ?", gone)

    def released(self, mount_id: int, mountpoint: str) -> None:
        """The mount is back as it was (or gone): forget its recorded options."""
        self._db.execute(
            "DELETE FROM held_mounts WHERE mount_id = ? AND mountpoint = ?", (mount_id, mountpoint)
        )

    def add_request(
        self, request_id: str, uid: int, document: dict[str, Any], created: float
    ) -> None:
        """Record a new, pending request (committed before it is acknowledged)."""
        self._db.execute(
            "INSERT INTO requests(id, uid, document, created, state) VALUES (?,?,?,?, 'pending')",
            (request_id, uid, json.dumps(document, ensure_ascii=True, sort_keys=True), created),
        )

    def set_request_state(
        self, request_id: str, state: str, detail: str = "", until: float | None = None
    ) -> None:
        """Move a request on (approved until, denied because, expired, revoked)."""
        self._db.execute(
            "UPDATE requests SET state = ?, detail = ?, until = ? WHERE id = ?",
            (state, detail, until, request_id),
        )

    def requests(self, uid: int | None = None) -> list[StoredRequest]:
        """Requests, oldest first; only one user's when `uid` is given."""
        query = "SELECT id, uid, document, created, state, detail, until FROM requests"
        rows = (
            self._db.execute(query + " WHERE uid = ? ORDER BY created", (uid,)).fetchall()
            if uid is not None
            else self._db.execute(query + " ORDER BY created").fetchall()
        )
        return [StoredRequest(r[0], r[1], json.loads(r[2]), r[3], r[4], r[5], r[6]) for r in rows]

    def request(self, request_id: str) -> StoredRequest | None:
        """One request by id."""
        row = self._db.execute(
            "SELECT id, uid, document, created, state, detail, until FROM requests WHERE id = ?",
            (request_id,),
        ).fetchone()
        return (
            None
            if row is None
            else StoredRequest(row[0], row[1], json.loads(row[2]), row[3], row[4], row[5], row[6])
        )

    def devices(self) -> list[dict[str, object]]:
        """The last recorded view of every device (for inspection while the daemon is down)."""
        rows = self._db.execute("SELECT view FROM devices ORDER BY sys_path").fetchall()
        return [json.loads(r[0]) for r in rows]


def _held(item: dict[str, object]) -> HeldVolume:
    return HeldVolume(
        name=str(item["name"]),
        fs_type=str(item["fs_type"]),
        fs_uuid=str(item["fs_uuid"]),
        has_partition_table=bool(item["has_partition_table"]),
    )
