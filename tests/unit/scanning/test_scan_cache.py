"""The clean-hash cache: keyed by database version, shared by threads, kept on disk."""

from __future__ import annotations

import hashlib
import sqlite3
import stat
import threading
from pathlib import Path

from guardd.scanning.cache import ScanCache

A = hashlib.sha256(b"a").digest()
B = hashlib.sha256(b"b").digest()


def test_only_what_was_remembered_is_clean(tmp_path: Path) -> None:
    cache = ScanCache(tmp_path / "state" / "scan.db")
    assert not cache.is_clean(A, 7)
    cache.remember_clean(A, 7)
    cache.remember_clean(A, 7)  # twice is fine
    assert cache.is_clean(A, 7)
    assert not cache.is_clean(B, 7)
    assert len(cache) == 1
    cache.close()


def test_a_new_database_version_knows_nothing(tmp_path: Path) -> None:
    cache = ScanCache(tmp_path / "scan.db")
    cache.remember_clean(A, 7)
    assert not cache.is_clean(A, 8)
    cache.remember_clean(B, 8)
    assert cache.forget_other_versions(8) == 1
    assert not cache.is_clean(A, 7)
    assert cache.is_clean(B, 8)
    cache.close()


def test_it_survives_a_restart_and_is_private(tmp_path: Path) -> None:
    path = tmp_path / "scan.db"
    first = ScanCache(path)
    first.remember_clean(A, 3)
    first.close()
    second = ScanCache(path)
    assert second.is_clean(A, 3)
    second.close()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        columns = [row[1] for row in db.execute("PRAGMA table_info(scan_cache)")]
    assert columns == ["sha256", "db_version"]


def test_it_shares_a_file_with_other_tables(tmp_path: Path) -> None:
    path = tmp_path / "guardd.db"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE devices (x TEXT)")
    cache = ScanCache(path)
    cache.remember_clean(A, 1)
    assert cache.is_clean(A, 1)
    cache.close()
    with sqlite3.connect(path) as db:
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master")}
    assert {"devices", "scan_cache"} <= tables


def test_many_threads_at_once(tmp_path: Path) -> None:
    cache = ScanCache(tmp_path / "scan.db")
    digests = [hashlib.sha256(b"%d" % i).digest() for i in range(400)]
    errors: list[Exception] = []

    def work(part: list[bytes]) -> None:
        try:
            for digest in part:
                cache.remember_clean(digest, 5)
                assert cache.is_clean(digest, 5)
        except (AssertionError, sqlite3.Error) as e:  # an error in a thread would be lost
            errors.append(e)

    threads = [threading.Thread(target=work, args=(digests[i::8],)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(cache) == 400
    cache.close()
