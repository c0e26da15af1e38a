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
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import math
import os
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Protocol, Self, TypeAlias

JsonValue: TypeAlias = (
    "str | int | float | bool | Sequence[JsonValue] | Mapping[str, JsonValue] | None"
)

GENESIS_HASH = "0" * 64
"""The "prev" of the first record."""

EVENT_RESUMED_AFTER_DAMAGE = "audit.resumed_after_damage"
"""Written on open when the log ended in a torn or unreadable line; data {"damaged_line": N}."""

EVENT_RESUMED_AFTER_TRUNCATION = "audit.resumed_after_truncation"
"""Written on open when the head is ahead of the log; data {"head_seq": H, "log_seq": L}."""

RECORD_KEYS = frozenset({"seq", "ts", "event", "data", "prev", "hash"})

_EVENT_RE = re.compile(r"[a-z][a-z0-9_]*(?:\.[a-z][a-z0-9_]*)+")
_HEX64_RE = re.compile(r"[0-9a-f]{64}")
_SURROGATE_RE = re.compile("[\ud800-\udfff]")

_LOG_MODE = 0o640
_DIR_MODE = 0o750
_TAIL_BLOCK = 64 * 1024
# A record longer than this is not read back when resuming; it counts as damaged. Records the
# daemon writes are a few hundred bytes, so only a corrupted file gets anywhere near it.
_MAX_RESUME_LINE = 16 * 1024 * 1024
# Bounds on what one record's data may hold, so a cyclic or absurd structure handed to append()
# cannot hang or exhaust the daemon; anything beyond is replaced by a marker string.
_MAX_DEPTH = 32
_MAX_NODES = 100_000
_MAX_INT_BITS = 4096  # well below Python's int<->str digit limit, which would make dumps raise
# dict first: isinstance() tries them in order and the Mapping ABC check is the slow one.
_CONTAINERS = (dict, list, tuple, set, frozenset, Mapping)


class AuditError(Exception):
    """The audit log cannot be used (closed, or held by another process)."""


@dataclass(frozen=True)
class AuditRecord:
    """One line of the audit trail, exactly as written (data already made JSON-safe)."""

    seq: int
    ts: str
    event: str
    data: Mapping[str, JsonValue]
    prev: str
    hash: str

    def to_json(self) -> str:
        """The record's canonical JSON: the line in the file, without its newline."""
        return canonical_json(
            {
                "seq": self.seq,
                "ts": self.ts,
                "event": self.event,
                "data": self.data,
                "prev": self.prev,
                "hash": self.hash,
            }
        )


class RecordSink(Protocol):
    """Somewhere a copy of each record goes once it is on disk (syslog, the journal).

    `emit` must not raise: the record is already written and acknowledged.
    """

    def emit(self, record: AuditRecord) -> None:
        """Pass the record on."""


def canonical_json(value: object) -> str:
    """The one JSON spelling that record hashes are computed over."""
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )


def record_hash(body: Mapping[str, object]) -> str:
    """sha256 (hex) of the canonical JSON of a record without its "hash" key."""
    return hashlib.sha256(canonical_json(body).encode("utf-8")).hexdigest()


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
    if isinstance(seq, int) and _is_seq(seq) and isinstance(digest, str) and _is_hex64(digest):
        return seq, digest
    if (seq, digest) == (0, GENESIS_HASH) and type(seq) is int:
        return 0, GENESIS_HASH
    raise ValueError("the head file has no valid seq and hash")


def _is_seq(value: object) -> bool:
    return type(value) is int and value >= 1


def _is_hex64(value: object) -> bool:
    return isinstance(value, str) and _HEX64_RE.fullmatch(value) is not None


def parse_record(line: bytes) -> AuditRecord:
    """Parse and check one line (without its newline) of the log.

    Raises ValueError with a plain reason: "not valid JSON", "not an audit record" (wrong or
    missing fields) or "altered" (the hash does not match the content).
    """
    try:
        obj = json.loads(line)
    except (ValueError, RecursionError) as exc:
        raise ValueError("not valid JSON") from exc
    if not _well_formed(obj):
        raise ValueError("not an audit record")
    seq, ts, event, data = obj["seq"], obj["ts"], obj["event"], obj["data"]
    prev, digest = obj["prev"], obj.pop("hash")
    try:
        actual = record_hash(obj)
    except ValueError as exc:  # NaN and friends: json.loads accepts them, we never write them
        raise ValueError("not an audit record") from exc
    if actual != digest:
        raise ValueError("altered")
    return AuditRecord(seq=seq, ts=ts, event=event, data=data, prev=prev, hash=digest)


def clean_data(data: Mapping[str, JsonValue]) -> dict[str, JsonValue]:
    """A plain-JSON copy of `data` that always encodes (see _Cleaner)."""
    cleaner = _Cleaner()
    return {_clean_key(k): cleaner.clean(v, 1) for k, v in data.items()}


def _well_formed(obj: object) -> bool:
    """The record's shape: exactly the six keys, each of the right type."""
    if not isinstance(obj, dict) or obj.keys() != RECORD_KEYS:
        return False
    return (
        _is_seq(obj["seq"])
        and isinstance(obj["ts"], str)
        and isinstance(obj["event"], str)
        and isinstance(obj["data"], dict)
        and isinstance(obj["prev"], str)
        and isinstance(obj["hash"], str)
    )


class _Cleaner:
    """Turns whatever append() was given into plain JSON values that encode without error.

    Hostile strings (USB serials decoded with surrogateescape) keep their text except for lone
    surrogates, which UTF-8 cannot carry and which become U+FFFD. Control characters need no
    work: the JSON encoder escapes them, so a line can never contain a raw newline.
    """

    def __init__(self) -> None:
        self._nodes_left = _MAX_NODES
        self._open: set[int] = set()  # containers being cleaned right now: a cycle guard

    def clean(self, value: object, depth: int = 0) -> JsonValue:
        self._nodes_left -= 1
        if self._nodes_left < 0:
            return "<truncated>"
        if type(value) is str:  # by far the commonest value: skip the isinstance chain
            return _clean_str(value)
        if isinstance(value, _CONTAINERS):
            return self._container(value, depth)
        return _clean_scalar(value)

    def _container(
        self,
        value: Mapping[object, object] | Sequence[object] | frozenset[object] | set[object],
        depth: int,
    ) -> JsonValue:
        if depth >= _MAX_DEPTH:
            return "<nested too deep>"
        if id(value) in self._open:
            return "<cycle>"
        self._open.add(id(value))
        try:
            if isinstance(value, Mapping):
                return {_clean_key(k): self.clean(v, depth + 1) for k, v in value.items()}
            return [self.clean(v, depth + 1) for v in value]
        finally:
            self._open.discard(id(value))


def _clean_scalar(value: object) -> JsonValue:
    if isinstance(value, str):
        return _clean_str(value)
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):  # int() drops IntEnum and friends to the plain number
        return int(value) if value.bit_length() <= _MAX_INT_BITS else "<int too large>"
    if isinstance(value, float):  # NaN and infinities are not JSON: keep them as text
        return float(value) if math.isfinite(value) else repr(float(value))
    if isinstance(value, bytes | bytearray):
        return _clean_str(bytes(value).decode("utf-8", "backslashreplace"))
    return _clean_str(_describe(value))


def _clean_str(text: str) -> str:
    if text.isascii():  # the common case, and ASCII cannot hold a surrogate
        return str(text)
    return _SURROGATE_RE.sub("\ufffd", str(text))


def _clean_key(key: object) -> str:
    # json.dumps would turn 1 into "1" but sort it as a number, so a re-encoding by verify
    # could order keys differently; all keys become strings here, before anything is sorted.
    return _clean_str(key if isinstance(key, str) else _describe(key))


def _describe(value: object) -> str:
    try:
        return str(value)
    except Exception:  # noqa: BLE001 - a broken __str__ must not cost us the audit record
        return f"<unprintable {type(value).__name__}>"


def _timestamp(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _render(seq: int, ts: str, event: str, data_json: str, prev: str) -> tuple[str, bytes]:
    """Return (hash, line) for a record, building its canonical JSON by hand.

    Keys in sorted order are data, event, hash, prev, seq, ts: the line is the hashed body
    with "hash" spliced in, which spares a second json.dumps per append. A test checks the
    result equals canonical_json() of the record.
    """
    start = '{"data":' + data_json + ',"event":' + json.dumps(event)
    end = ',"prev":"' + prev + '","seq":' + str(seq) + ',"ts":"' + ts + '"}'
    digest = hashlib.sha256((start + end).encode("utf-8")).hexdigest()
    line = start + ',"hash":"' + digest + '"' + end + "\n"
    return digest, line.encode("utf-8")


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
        self._head_writer = _HeadWriter(self._head_path)
        self._fd: int | None = fd
        self._clock = clock
        self._sink = sink
        self._fsync = fsync
        self._lock = threading.Lock()
        self._seq = 0
        self._hash = GENESIS_HASH
        self._needs_resume = True

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
        if not _EVENT_RE.fullmatch(event):
            raise ValueError(f"audit event must be a dotted lower-case name, got {event!r}")
        with self._lock:
            written = []
            if self._needs_resume:
                # A previous write failed, possibly half-way: re-read the tail so the damage is
                # recorded and the chain continues from what really is in the file.
                written = self._resume()
            record = self._write_record(event, clean_data(data))
        self._emit([*written, record])
        return record

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
        if self._sink is None:
            return
        for record in records:
            try:
                self._sink.emit(record)
            except Exception:  # noqa: BLE001, S112 - the record is on disk; a sink can't undo that
                continue

    def _fileno(self) -> int:
        if self._fd is None:
            raise AuditError(f"{self._path} is closed")
        return self._fd

    def _write_record(self, event: str, data: dict[str, JsonValue]) -> AuditRecord:
        fd = self._fileno()
        seq, ts, prev = self._seq + 1, _timestamp(self._clock()), self._hash
        digest, line = _render(seq, ts, event, canonical_json(data), prev)
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


class _HeadWriter:
    """Keeps `<log>.head` at the newest (seq, hash) from a background thread.

    Positions are posted in chain order and the thread writes only the newest one waiting, so
    a burst of appends costs one or two renames, and the head never names a record that is not
    in the log yet.
    """

    def __init__(self, path: Path) -> None:
        self._path = path
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
            fd = os.open(self._tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, _LOG_MODE)
            try:
                os.write(fd, payload)
            finally:
                os.close(fd)
            os.replace(self._tmp, self._path)
        except OSError:
            # The record itself is written and acknowledged. A head that lags behind the log is
            # harmless (verify accepts it) and is brought up to date by the next append.
            pass


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
