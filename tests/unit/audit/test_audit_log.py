"""AuditLog: record format, chaining, resuming, damage handling and hostile data."""

from __future__ import annotations

import errno
import fcntl
import itertools
import json
import math
import os
import tempfile
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from guardd.audit import (
    EVENT_RESUMED_AFTER_DAMAGE,
    EVENT_RESUMED_AFTER_TRUNCATION,
    GENESIS_HASH,
    AuditError,
    AuditLog,
    AuditRecord,
    JsonValue,
    head_path_for,
    verify,
)
from guardd.audit.head import read_head
from guardd.audit.record import canonical_json, record_hash

DECISION: dict[str, JsonValue] = {"device": "1-2", "verdict": "blocked", "reason": "not enrolled"}


def fixed_clock(start: float = 1_700_000_000.0) -> Callable[[], float]:
    """A clock that ticks 1.5 ms per call, so timestamps are predictable."""
    ticks = iter(range(10**9))
    return lambda: start + next(ticks) * 0.0015


def lines_of(path: Path) -> list[bytes]:
    return path.read_bytes().split(b"\n")[:-1]


def parsed(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in lines_of(path)]


@pytest.fixture
def log_path(tmp_path: Path) -> Path:
    return tmp_path / "var" / "audit.log"


@pytest.fixture
def log(log_path: Path) -> Iterator[AuditLog]:
    with AuditLog.open(log_path, clock=fixed_clock()) as opened:
        yield opened


class RecordingSink:
    def __init__(self) -> None:
        self.records: list[AuditRecord] = []

    def emit(self, record: AuditRecord) -> None:
        self.records.append(record)


# -- the record format ---------------------------------------------------------------------


def test_first_record_has_seq_1_and_genesis_prev(log: AuditLog, log_path: Path) -> None:
    record = log.append("device.decision", DECISION)
    assert record.seq == 1
    assert record.prev == GENESIS_HASH
    assert record.event == "device.decision"
    assert record.data == DECISION
    assert log.head == (1, record.hash)


def test_line_is_the_canonical_json_of_the_record(log: AuditLog, log_path: Path) -> None:
    record = log.append("device.decision", {"b": 1, "a": {"z": [1, 2], "y": None}})
    line = lines_of(log_path)[0].decode()
    assert line == record.to_json()
    obj = json.loads(line)
    assert line == canonical_json(obj)
    assert list(obj) == ["data", "event", "hash", "prev", "seq", "ts"]
    del obj["hash"]
    assert record_hash(obj) == record.hash


def test_timestamp_is_utc_iso8601_with_microseconds(log_path: Path) -> None:
    with AuditLog.open(log_path, clock=lambda: 1_700_000_000.25) as log:
        record = log.append("device.decision", {})
    assert record.ts == "2023-11-14T22:13:20.250000Z"


def test_records_are_chained(log: AuditLog, log_path: Path) -> None:
    records = [log.append("device.decision", {"n": n}) for n in range(5)]
    assert [r.seq for r in records] == [1, 2, 3, 4, 5]
    for before, after in itertools.pairwise(records):
        assert after.prev == before.hash
    assert log.head == (5, records[-1].hash)


@pytest.mark.parametrize("event", ["", "device", "Device.decision", "device..x", "a.b\n", "a b.c"])
def test_event_must_be_a_dotted_name(log: AuditLog, event: str) -> None:
    with pytest.raises(ValueError, match="dotted"):
        log.append(event, {})


# -- the file ------------------------------------------------------------------------------


def test_creates_parent_directory_and_file_with_restricted_modes(log_path: Path) -> None:
    old_umask = os.umask(0o022)
    try:
        with AuditLog.open(log_path) as log:
            log.append("device.decision", DECISION)
    finally:
        os.umask(old_umask)
    assert log_path.parent.stat().st_mode & 0o777 == 0o750
    assert log_path.stat().st_mode & 0o777 == 0o640


def test_descriptor_is_append_only_and_close_on_exec(log: AuditLog, log_path: Path) -> None:
    fds = [int(fd.name) for fd in Path("/proc/self/fd").iterdir() if _readlink(fd) == str(log_path)]
    assert len(fds) == 1
    flags = fcntl.fcntl(fds[0], fcntl.F_GETFL)
    assert flags & os.O_APPEND
    assert flags & os.O_ACCMODE == os.O_WRONLY
    assert fcntl.fcntl(fds[0], fcntl.F_GETFD) & fcntl.FD_CLOEXEC


def _readlink(path: Path) -> str:
    try:
        return os.readlink(path)
    except OSError:
        return ""


def test_each_record_is_one_write(log: AuditLog, monkeypatch: pytest.MonkeyPatch) -> None:
    writes: list[bytes] = []
    real_write = os.write

    def spy(fd: int, data: bytes) -> int:
        writes.append(bytes(data))
        return real_write(fd, data)

    monkeypatch.setattr(os, "write", spy)
    log.append("device.decision", {"serial": "x" * 5000})
    log_writes = [w for w in writes if w.startswith(b'{"data"')]
    assert len(log_writes) == 1
    assert log_writes[0].endswith(b"\n")
    assert log_writes[0].count(b"\n") == 1


def test_head_file_names_the_newest_record(log: AuditLog, log_path: Path) -> None:
    log.append("device.decision", DECISION)
    last = log.append("device.decision", DECISION)
    log.flush()
    assert read_head(head_path_for(log_path)) == (2, last.hash)


def test_close_writes_the_head_and_is_idempotent(log_path: Path) -> None:
    log = AuditLog.open(log_path)
    record = log.append("device.decision", DECISION)
    log.close()
    log.close()
    assert read_head(head_path_for(log_path)) == (1, record.hash)
    with pytest.raises(AuditError, match="closed"):
        log.append("device.decision", DECISION)


def test_a_second_writer_is_refused(log: AuditLog, log_path: Path) -> None:
    with pytest.raises(AuditError, match="another process"):
        AuditLog.open(log_path)


def test_log_that_is_a_symlink_is_refused(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere"
    target.write_bytes(b"")
    link = tmp_path / "audit.log"
    link.symlink_to(target)
    with pytest.raises(OSError, match="symbolic links") as caught:
        AuditLog.open(link)
    assert caught.value.errno == errno.ELOOP


def test_fsync_option_syncs_each_record(log_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    synced: list[int] = []
    monkeypatch.setattr(os, "fdatasync", synced.append)
    with AuditLog.open(log_path, fsync=True) as log:
        log.append("device.decision", DECISION)
        log.append("device.decision", DECISION)
    assert len(synced) == 2


# -- resuming ------------------------------------------------------------------------------


def test_reopening_resumes_the_chain(log_path: Path) -> None:
    with AuditLog.open(log_path) as log:
        first = [log.append("device.decision", {"n": n}) for n in range(3)]
    with AuditLog.open(log_path) as log:
        assert log.head == (3, first[-1].hash)
        fourth = log.append("device.decision", {"n": 3})
    assert fourth.seq == 4
    assert fourth.prev == first[-1].hash
    assert verify(log_path).ok
    assert verify(log_path).records == 4


def test_open_writes_the_head_before_any_record(log_path: Path) -> None:
    with AuditLog.open(log_path):
        assert read_head(head_path_for(log_path)) == (0, GENESIS_HASH)
    assert verify(log_path).ok


def test_opening_an_empty_file_starts_a_new_chain(log_path: Path) -> None:
    log_path.parent.mkdir(parents=True)
    log_path.write_bytes(b"")
    with AuditLog.open(log_path) as log:
        assert log.head == (0, GENESIS_HASH)
        assert log.append("device.decision", {}).prev == GENESIS_HASH


def test_resuming_reads_only_the_tail(log_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with AuditLog.open(log_path) as log:
        for n in range(3000):
            log.append("device.decision", {"n": n, "pad": "p" * 600})
    size = log_path.stat().st_size
    assert size > 2_000_000
    read: list[int] = []
    real_pread = os.pread

    def counting_pread(fd: int, length: int, offset: int) -> bytes:
        data = real_pread(fd, length, offset)
        read.append(len(data))
        return data

    def no_read(*_args: object) -> bytes:
        raise AssertionError("resume must not read the whole file")

    monkeypatch.setattr(os, "pread", counting_pread)
    monkeypatch.setattr(os, "read", no_read)
    with AuditLog.open(log_path) as log:
        assert log.head[0] == 3000
    assert sum(read) < 200_000


def test_torn_last_line_is_kept_and_reported(log_path: Path) -> None:
    sink = RecordingSink()
    with AuditLog.open(log_path) as log:
        records = [log.append("device.decision", {"n": n}) for n in range(3)]
    torn = b'{"data":{"n":3},"event":"device.deci'
    with log_path.open("ab") as f:  # a write cut short (power loss): half a line, no newline
        f.write(torn)
    with AuditLog.open(log_path, sink=sink) as log:
        assert log.head[0] == 4
        after = log.append("device.decision", {"n": 3})
    lines = lines_of(log_path)
    assert lines[3] == torn  # history is not rewritten, only ended with a newline
    resumed = json.loads(lines[4])
    assert resumed["event"] == EVENT_RESUMED_AFTER_DAMAGE
    assert resumed["data"] == {"damaged_line": 4}
    assert resumed["seq"] == 4
    assert resumed["prev"] == records[2].hash
    assert after.seq == 5
    assert [r.event for r in sink.records] == [EVENT_RESUMED_AFTER_DAMAGE, "device.decision"]
    result = verify(log_path)
    assert not result.ok
    assert result.first_bad_line == 4
    assert result.records == 3
    assert result.problem == "line 4: not valid JSON"


def test_an_acknowledged_record_cut_short_is_damage_and_loss(log_path: Path) -> None:
    with AuditLog.open(log_path) as log:
        records = [log.append("device.decision", {"n": n}) for n in range(3)]
    with log_path.open("r+b") as f:
        f.truncate(log_path.stat().st_size - 20)
    assert verify(log_path).problem.startswith("line 3: the last line is incomplete")
    with AuditLog.open(log_path) as log:
        assert log.head[0] == 4
    damage, loss = (json.loads(line) for line in lines_of(log_path)[-2:])
    assert damage["data"] == {"damaged_line": 3}
    assert damage["prev"] == records[1].hash
    assert loss["event"] == EVENT_RESUMED_AFTER_TRUNCATION
    assert loss["data"] == {"head_seq": 3, "log_seq": 2}
    assert verify(log_path).problem == "line 3: not valid JSON"


def test_unparseable_complete_last_lines_are_reported(log_path: Path) -> None:
    with AuditLog.open(log_path) as log:
        records = [log.append("device.decision", {"n": n}) for n in range(3)]
    with log_path.open("ab") as f:
        f.write(b"garbage\n\n{}\n")
    with AuditLog.open(log_path) as log:
        resumed_seq, _ = log.head
    resumed = json.loads(lines_of(log_path)[-1])
    assert resumed["event"] == EVENT_RESUMED_AFTER_DAMAGE
    assert resumed["data"] == {"damaged_line": 4}
    assert resumed["prev"] == records[-1].hash
    assert resumed_seq == 4
    result = verify(log_path)
    assert result.first_bad_line == 4
    assert result.problem == "line 4: not valid JSON"


def test_a_log_of_only_garbage_restarts_the_chain(log_path: Path) -> None:
    log_path.parent.mkdir(parents=True)
    log_path.write_bytes(b"junk\nmore junk")
    with AuditLog.open(log_path) as log:
        assert log.head[0] == 1
    resumed = json.loads(lines_of(log_path)[-1])
    assert resumed["data"] == {"damaged_line": 1}
    assert resumed["prev"] == GENESIS_HASH


def test_records_removed_while_stopped_are_recorded_on_open(log_path: Path) -> None:
    with AuditLog.open(log_path) as log:
        records = [log.append("device.decision", {"n": n}) for n in range(5)]
    log_path.write_bytes(b"".join(line + b"\n" for line in lines_of(log_path)[:3]))
    assert verify(log_path).problem == (
        "2 records at the end were removed (the head says seq 5, the log ends at seq 3)"
    )
    with AuditLog.open(log_path) as log:
        assert log.head[0] == 4
    resumed = parsed(log_path)[-1]
    assert resumed["event"] == EVENT_RESUMED_AFTER_TRUNCATION
    assert resumed["data"] == {"head_seq": 5, "log_seq": 3}
    assert resumed["prev"] == records[2].hash
    result = verify(log_path)  # the evidence survives the restart
    assert result.first_bad_line == 4
    assert result.problem == (
        "line 4: the daemon found the log cut short when it restarted "
        "(the head said seq 5, the log ended at seq 3)"
    )


def test_a_removed_log_is_recorded_on_open(log_path: Path) -> None:
    with AuditLog.open(log_path) as log:
        log.append("device.decision", DECISION)
    log_path.unlink()
    assert verify(log_path).problem == "the log file was removed"
    with AuditLog.open(log_path) as log:
        assert log.head[0] == 1
    assert parsed(log_path)[0]["data"] == {"head_seq": 1, "log_seq": 0}
    assert verify(log_path).first_bad_line == 1


# -- failures while running ----------------------------------------------------------------


def test_a_failed_write_leaves_the_chain_intact(
    log: AuditLog, log_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = log.append("device.decision", DECISION)
    log.flush()  # the head thread must not be writing while os.write is patched
    real_write = os.write

    def full_disk(fd: int, data: bytes) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "write", full_disk)
    with pytest.raises(OSError, match="No space"):
        log.append("device.decision", DECISION)
    monkeypatch.setattr(os, "write", real_write)
    second = log.append("device.decision", DECISION)
    assert (second.seq, second.prev) == (2, first.hash)
    log.flush()
    assert verify(log_path).ok


def test_a_write_cut_short_is_recorded_as_damage(
    log: AuditLog, log_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = log.append("device.decision", DECISION)
    log.flush()  # the head thread must not be writing while os.write is patched
    real_write = os.write
    calls = 0

    def half_then_fail(fd: int, data: bytes) -> int:
        nonlocal calls
        calls += 1
        if calls == 1:
            return real_write(fd, bytes(data)[: len(data) // 2])
        raise OSError(errno.EIO, "I/O error")

    monkeypatch.setattr(os, "write", half_then_fail)
    with pytest.raises(OSError, match="I/O error"):
        log.append("device.decision", DECISION)
    monkeypatch.setattr(os, "write", real_write)
    after = log.append("device.decision", DECISION)
    damage = json.loads(lines_of(log_path)[-2])
    assert damage["event"] == EVENT_RESUMED_AFTER_DAMAGE
    assert damage["data"] == {"damaged_line": 2}
    assert damage["prev"] == first.hash
    assert after.seq == 3
    log.flush()
    assert verify(log_path).first_bad_line == 2


def test_a_failing_head_write_does_not_fail_the_append(
    log: AuditLog, log_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken_replace(*_args: object) -> None:
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(os, "replace", broken_replace)
    log.append("device.decision", DECISION)
    log.flush()
    monkeypatch.undo()
    assert read_head(head_path_for(log_path)) == (0, GENESIS_HASH)  # written by open()
    assert verify(log_path).ok  # a head behind the log is no damage
    record = log.append("device.decision", DECISION)
    log.flush()
    assert read_head(head_path_for(log_path)) == (2, record.hash)
    assert verify(log_path).ok


def test_a_raising_sink_does_not_fail_the_append(log_path: Path) -> None:
    class BrokenSink:
        def emit(self, record: AuditRecord) -> None:
            raise RuntimeError("journal gone")

    with AuditLog.open(log_path, sink=BrokenSink()) as log:
        assert log.append("device.decision", DECISION).seq == 1


def test_sink_receives_each_record(log_path: Path) -> None:
    sink = RecordingSink()
    with AuditLog.open(log_path, sink=sink) as log:
        records = [log.append("device.decision", {"n": n}) for n in range(3)]
    assert sink.records == records


# -- hostile data --------------------------------------------------------------------------

HOSTILE = [
    "\x00\x01\x1b[31mred\x7f",
    "line one\nline two\r\n",
    "quote \" backslash \\ and '",
    "lone \udcff surrogate \ud800",
    "\u2028 and \u2029 and \x85 split some line readers",
    "x" * 10_000,
    "é" * 300,
    '}\n{"seq":1}',
]


@pytest.mark.parametrize("text", HOSTILE)
def test_hostile_strings_round_trip(log: AuditLog, log_path: Path, text: str) -> None:
    record = log.append("device.decision", {"serial": text, text: "as a key"})
    log.append("device.decision", DECISION)
    log.flush()
    lines = lines_of(log_path)
    assert len(lines) == 2
    stored = json.loads(lines[0])["data"]
    expected = "".join("\ufffd" if 0xD800 <= ord(c) <= 0xDFFF else c for c in text)
    assert stored == {"serial": expected, expected: "as a key"}
    assert stored == record.data
    assert verify(log_path).ok


class Unprintable:
    def __str__(self) -> str:
        raise RuntimeError("no")


def test_values_that_are_not_json_are_made_safe(log: AuditLog, log_path: Path) -> None:
    cycle: list[object] = []
    cycle.append(cycle)
    deep: list[object] = []
    node = deep
    for _ in range(100):
        node.append([])
        node = node[0]  # type: ignore[assignment]
    data = {
        "nan": math.nan,
        "inf": -math.inf,
        "tuple": (1, 2),
        "set": frozenset({"a"}),
        "bytes": b"\xff\x00ok",
        "int_keys": {10: "a", 9: "b", None: "c"},
        "cycle": cycle,
        "deep": deep,
        "huge": 10**5000,
        "path": Path("/media/stick"),
        "weird": Unprintable(),
    }
    record = log.append("device.decision", data)  # type: ignore[arg-type]
    log.flush()
    assert verify(log_path).ok
    stored = parsed(log_path)[0]["data"]
    assert stored == record.data
    assert isinstance(stored, dict)
    assert stored["nan"] == "nan"
    assert stored["inf"] == "-inf"
    assert stored["tuple"] == [1, 2]
    assert stored["bytes"] == "\\xff\x00ok"
    assert stored["int_keys"] == {"10": "a", "9": "b", "None": "c"}
    assert stored["cycle"] == ["<cycle>"]
    assert "<nested too deep>" in json.dumps(stored["deep"])
    assert stored["huge"] == "<int too large>"
    assert stored["path"] == "/media/stick"
    assert stored["weird"] == "<unprintable Unprintable>"


def test_the_callers_data_is_copied(log: AuditLog) -> None:
    data: dict[str, JsonValue] = {"list": [1]}
    record = log.append("device.decision", data)
    data["list"] = [2]
    assert record.data == {"list": [1]}


hostile_text = st.text(
    alphabet=st.one_of(
        st.characters(),
        st.sampled_from(["\udcff", "\ud800", "\n", "\r", "\x00", "\u2028", '"', "\\", "\x85"]),
    )
)
json_values: st.SearchStrategy[JsonValue] = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | hostile_text,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(hostile_text, children, max_size=4)
    ),
    max_leaves=12,
)


@settings(max_examples=150, deadline=None, database=None)
@given(st.lists(st.dictionaries(hostile_text, json_values, max_size=6), min_size=1, max_size=4))
def test_any_data_appends_and_verifies(batches: list[Mapping[str, JsonValue]]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "audit.log"
        with AuditLog.open(path) as log:
            records = [log.append("device.decision", data) for data in batches]
        assert verify(path).ok
        lines = lines_of(path)
        assert len(lines) == len(records)
        for line, record in zip(lines, records, strict=True):
            assert line.decode() == record.to_json()
