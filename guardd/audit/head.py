"""The `<log>.head` anchor: the newest (seq, hash), so records cut from the log's end show up.
A module of its own because AuditLog writes it (from a background thread) and verify reads it.
"""

from __future__ import annotations

import json
import os
import re
import threading
from pathlib import Path

from guardd.audit.record import GENESIS_HASH, is_seq

_HEX64_RE = re.compile(r"[0-9a-f]{64}")


def head_path_for(path: Path) -> Path:
    """Where the head (the newest seq and hash) of the log at `path` is kept."""
    return path.with_name(path.name + ".head")


def read_head(path: Path) -> tuple[int, str] | None:
    """The (seq, hash) in a head file; None if it is missing.

    (0, GENESIS_HASH) is the head of a log with no records yet. Raises ValueError if the file
    exists but does not hold a valid head.
    """
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None
    try:
        head = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        raise ValueError("the head file is not valid JSON") from exc
    seq, digest = (head.get("seq"), head.get("hash")) if isinstance(head, dict) else (None, None)
    if isinstance(seq, int) and is_seq(seq) and isinstance(digest, str) and _is_hex64(digest):
        return seq, digest
    if (seq, digest) == (0, GENESIS_HASH) and type(seq) is int:
        return 0, GENESIS_HASH
    raise ValueError("the head file has no valid seq and hash")


def _is_hex64(value: object) -> bool:
    return isinstance(value, str) and _HEX64_RE.fullmatch(value) is not None


class HeadWriter:
    """Keeps `<log>.head` at the newest (seq, hash) from a background thread.

    Positions are posted in chain order and the thread writes only the newest one waiting, so
    a burst of appends costs one or two renames, and the head never names a record that is not
    in the log yet.
    """

    def __init__(self, path: Path, mode: int) -> None:
        self._path = path
        self._mode = mode  # the log's own mode
        self._tmp = path.with_name(path.name + ".tmp")
        self._cond = threading.Condition()
        self._pending: tuple[int, str] | None = None
        self._busy = False
        self._closing = False
        self._thread = threading.Thread(target=self._run, name="guardd-audit-head", daemon=True)
        self._thread.start()

    def post(self, seq: int, digest: str) -> None:
        with self._cond:
            self._pending = (seq, digest)
            self._cond.notify_all()

    def flush(self) -> None:
        with self._cond:
            # The timeout only guards against waiting forever on a thread that has died.
            while not self._cond.wait_for(self._idle, timeout=1.0):
                if not self._thread.is_alive():
                    return

    def _idle(self) -> bool:
        return self._pending is None and not self._busy

    def close(self) -> None:
        """Write what is pending, then stop the thread (idempotent)."""
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        self._thread.join()

    def _run(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._pending is not None or self._closing)
                if self._pending is None:
                    return
                (seq, digest), self._pending = self._pending, None
                self._busy = True
            try:
                self._write(seq, digest)
            finally:
                with self._cond:
                    self._busy = False
                    self._cond.notify_all()

    def _write(self, seq: int, digest: str) -> None:
        payload = ('{"hash":"' + digest + '","seq":' + str(seq) + "}\n").encode()
        try:
            fd = os.open(
                self._tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, self._mode
            )
            try:
                os.write(fd, payload)
            finally:
                os.close(fd)
            os.replace(self._tmp, self._path)
        except OSError:
            # The record itself is written and acknowledged. A head that lags behind the log is
            # harmless (verify accepts it) and is brought up to date by the next append.
            pass
