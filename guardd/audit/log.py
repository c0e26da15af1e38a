"""The audit trail: one hash-chained JSON line per security decision.

Each line is the canonical JSON of a record whose "hash" covers every other field, including
"prev", the hash of the record before it. An edited, removed, inserted or reordered line
therefore breaks the chain (see guardd.audit.verify). Removing lines from the END leaves a
valid chain, so after every append the writer also replaces `<log>.head` with the newest
(seq, hash); a log that ends before its head was cut short.

Crash safety: a record goes to the file in one write() on an O_APPEND descriptor, so a kill -9
leaves either the whole line or nothing; the head is swapped in with rename(), which is atomic.
The head is written by a background thread, right after each append but off its path: on ext4
creating and renaming over a file costs several hundred microseconds, a record one write().
So the head may lag the log by the records of the last moment (verify accepts a head behind the
log, as a kill -9 between the two writes leaves it) but is never ahead of it.
A log damaged anyway (power loss, a full disk, an editor) is never rewritten: the writer
appends a record that says what it found and carries on the chain from the last good record.

The record format and its hashing live in guardd.audit.record, the head file in guardd.audit.head.
"""

from __future__ import annotations

import fcntl
import os
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Protocol, Self

from guardd.audit.head import HeadWriter, head_path_for, read_head
from guardd.audit.record import (
    GENESIS_HASH,
    AuditRecord,
    JsonValue,
    canonical_json,
    check_event,
    clean_data,
    format_timestamp,
    parse_record,
    render_line,
)

EVENT_RESUMED_AFTER_DAMAGE = "audit.resumed_after_damage"
"""Written on open when the log ended in a torn or unreadable line; data {"damaged_line": N}."""

EVENT_RESUMED_AFTER_TRUNCATION = "audit.resumed_after_truncation"
"""Written on open when the head is ahead of the log; data {"head_seq": H, "log_seq": L}."""

_LOG_MODE = 0o640
_DIR_MODE = 0o750
_TAIL_BLOCK = 64 * 1024
# A record longer than this is not read back when resuming; it counts as damaged. Records the
# daemon writes are a few hundred bytes, so only a corrupted file gets anywhere near it.
_MAX_RESUME_LINE = 16 * 1024 * 1024


class AuditError(Exception):
    """The audit log cannot be used (closed, or held by another process)."""


class RecordSink(Protocol):
    """Somewhere a copy of each record goes once it is on disk (syslog, the journal).

    `emit` must not raise: the record is already written and acknowledged.
    """

    def emit(self, record: AuditRecord) -> None:
        """Pass the record on."""


class AuditLog:
    """An open, append-only, hash-chained audit log. Create it with AuditLog.open().

    Thread-safe; one process at a time (an exclusive flock is held while open).
    """

    def __init__(
        self,
        path: Path,
        fd: int,
        *,
        clock: Callable[[], float],
        sink: RecordSink | None,
        fsync: bool,
    ) -> None:
        """Use AuditLog.open(); this only stores the already opened descriptor."""
        self._path = path
        self._head_path = head_path_for(path)
        self._head_writer = HeadWriter(self._head_path, _LOG_MODE)
        self._fd: int | None = fd
        self._clock = clock
        self._sink = sink
        self._fsync = fsync
        self._lock = threading.Lock()
        self._seq = 0
        self._hash = GENESIS_HASH
        self._needs_resume = True
        self._listeners: list[Callable[[AuditRecord], None]] = []

    @classmethod
    def open(
        cls,
        path: Path,
        *,
        clock: Callable[[], float] = time.time,
        sink: RecordSink | None = None,
        fsync: bool = False,
    ) -> AuditLog:
        """Open (creating if needed) the log at `path` and resume its chain.

        If the log ends in a damaged line, or is shorter than its head says, a record saying so
        is appended first. Raises AuditError if another process has the log open, OSError if
        it cannot be opened.
        """
        path.parent.mkdir(mode=_DIR_MODE, parents=True, exist_ok=True)
        # O_NOFOLLOW: the log never legitimately is a symlink, and following one could make
        # the root daemon append to a file someone else chose.
        flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW
        fd = os.open(path, flags, _LOG_MODE)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise AuditError(f"{path} is open in another process") from None
        log = cls(path, fd, clock=clock, sink=sink, fsync=fsync)
        try:
            with log._lock:
                written = log._resume()
                log._head_writer.post(log._seq, log._hash)
            # Wait for the head once, at start: the head thread may lag behind appends, but a
            # head must exist before the first record, or a kill -9 right after that record
            # would leave a log without a head, which verify rightly reports.
            log._head_writer.flush()
        except BaseException:
            log.close()
            raise
        log._emit(written)
        return log

    @property
    def path(self) -> Path:
        """The log file."""
        return self._path

    @property
    def head(self) -> tuple[int, str]:
        """(seq, hash) of the newest record; (0, "0" * 64) for an empty log."""
        with self._lock:
            return self._seq, self._hash

    def append(self, event: str, data: Mapping[str, JsonValue]) -> AuditRecord:
        """Write one record and return it as written.

        `data` may hold hostile strings; it is copied into plain JSON (lone surrogates become
        U+FFFD) and encoding never fails. Raises ValueError for an event that is not a dotted
        lower-case name, AuditError if the log is closed, OSError if the write fails (the
        record is then not in the log).
        """
        check_event(event)
        with self._lock:
            written = []
            if self._needs_resume:
                # A previous write failed, possibly half-way: re-read the tail so the damage is
                # recorded and the chain continues from what really is in the file.
                written = self._resume()
            record = self._write_record(event, clean_data(data))
        self._emit([*written, record])
        return record

    def add_listener(self, listener: Callable[[AuditRecord], None]) -> None:
        """Call `listener` with each record once it is in the file (in the appending thread;
        it must be quick and must not raise: what it raises is ignored)."""
        self._listeners.append(listener)

    def flush(self) -> None:
        """Wait until the head file names the newest record."""
        self._head_writer.flush()

    def close(self) -> None:
        """Write the head and close the log (idempotent)."""
        with self._lock:
            self._head_writer.close()
            if self._fd is not None:
                os.close(self._fd)  # closing also drops the flock
                self._fd = None

    def __enter__(self) -> Self:
        """Use the log as a context manager; it is closed on exit."""
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Close the log."""
        self.close()

    # -- internals (called with self._lock held, except _emit) --

    def _emit(self, records: list[AuditRecord]) -> None:
        receivers: list[Callable[[AuditRecord], None]] = list(self._listeners)
        if self._sink is not None:
            receivers.insert(0, self._sink.emit)
        for record in records:
            for receive in receivers:
                try:
                    receive(record)
                except Exception:  # noqa: BLE001, S112 - the record is on disk; can't undo that
                    continue

    def _fileno(self) -> int:
        if self._fd is None:
            raise AuditError(f"{self._path} is closed")
        return self._fd

    def _write_record(self, event: str, data: dict[str, JsonValue]) -> AuditRecord:
        fd = self._fileno()
        seq, ts, prev = self._seq + 1, format_timestamp(self._clock()), self._hash
        digest, line = render_line(seq, ts, event, canonical_json(data), prev)
        self._write(fd, line)
        self._seq, self._hash = seq, digest
        self._head_writer.post(seq, digest)
        return AuditRecord(seq=seq, ts=ts, event=event, data=data, prev=prev, hash=digest)

    def _write(self, fd: int, payload: bytes) -> None:
        self._needs_resume = True  # until the whole payload is known to be in the file
        view = memoryview(payload)
        while view:  # one write() in practice; the loop only matters on a short write
            written = os.write(fd, view)
            view = view[written:]
        if self._fsync:
            os.fdatasync(fd)
        self._needs_resume = False

    def _resume(self) -> list[AuditRecord]:
        """Continue the chain from the file's last good record; record any damage found."""
        fd = self._fileno()
        # The head first: once a record below is written, the head thread moves it on.
        head = _read_head_quietly(self._head_path)
        tail = _scan_tail(self._path)
        self._seq, self._hash = tail.seq, tail.hash
        self._needs_resume = False
        written = []
        if tail.torn:
            self._write(fd, b"\n")  # end the torn line; history itself is never rewritten
        if tail.damaged_line is not None:
            data: dict[str, JsonValue] = {"damaged_line": tail.damaged_line}
            written.append(self._write_record(EVENT_RESUMED_AFTER_DAMAGE, data))
        if head is not None and _head_ahead_of(head, tail.seq, tail.hash):
            data = {"head_seq": head[0], "log_seq": tail.seq}
            written.append(self._write_record(EVENT_RESUMED_AFTER_TRUNCATION, data))
        return written


def _read_head_quietly(path: Path) -> tuple[int, str] | None:
    try:
        return read_head(path)
    except (OSError, ValueError):
        return None  # an unreadable head is rewritten by the next append; verify reports it


def _head_ahead_of(head: tuple[int, str], seq: int, digest: str) -> bool:
    head_seq, head_hash = head
    return head_seq > seq or (head_seq == seq and head_hash != digest)


@dataclass(frozen=True)
class _Tail:
    """What the end of an existing log says: where the chain continues, and any damage."""

    seq: int
    hash: str
    torn: bool  # the file does not end in a newline
    damaged_line: int | None  # first unreadable line after the last good record


def _scan_tail(path: Path) -> _Tail:
    """Find the last good record by reading the file backwards from its end.

    Normally that is the last line, so only a block of the tail is read whatever the log's
    size. Only when the tail is damaged does this walk further back, and count the lines
    before the damage to name its line number.
    """
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
    try:
        size = os.fstat(fd).st_size
        if size == 0:
            return _Tail(0, GENESIS_HASH, torn=False, damaged_line=None)
        torn = os.pread(fd, 1, size - 1) != b"\n"
        last_good: AuditRecord | None = None
        first_bad: int | None = None
        for start, stop in _reverse_line_spans(fd, size if torn else size - 1):
            last_good = _read_good_record(fd, start, stop)
            if last_good is not None:
                break
            first_bad = start
        damaged = None if first_bad is None else _count_newlines(fd, first_bad) + 1
        if last_good is None:
            return _Tail(0, GENESIS_HASH, torn=torn, damaged_line=damaged)
        return _Tail(last_good.seq, last_good.hash, torn=torn, damaged_line=damaged)
    finally:
        os.close(fd)


def _reverse_line_spans(fd: int, end: int) -> Iterator[tuple[int, int]]:
    """Yield (start, stop) offsets of the lines in fd[:end], last line first.

    `stop` excludes the newline; the caller excludes the file's final newline from `end`.
    Memory use is one block, however long the lines.
    """
    stop = pos = end
    while pos > 0:
        block_start = max(0, pos - _TAIL_BLOCK)
        block = os.pread(fd, pos - block_start, block_start)
        search_end = len(block)
        while (newline := block.rfind(b"\n", 0, search_end)) != -1:
            yield block_start + newline + 1, stop
            stop = block_start + newline
            search_end = newline
        pos = block_start
    yield 0, stop


def _read_good_record(fd: int, start: int, stop: int) -> AuditRecord | None:
    if stop - start > _MAX_RESUME_LINE:
        return None
    try:
        return parse_record(os.pread(fd, stop - start, start))
    except ValueError:
        return None


def _count_newlines(fd: int, end: int) -> int:
    count, pos = 0, 0
    while pos < end:
        block = os.pread(fd, min(_TAIL_BLOCK * 16, end - pos), pos)
        if not block:
            break
        count += block.count(b"\n")
        pos += len(block)
    return count
