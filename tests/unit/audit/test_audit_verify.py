"""verify(): every kind of tampering is caught, at the right line, in plain words."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from guardd.audit import GENESIS_HASH, AuditLog, VerifyResult, head_path_for, verify
from guardd.audit.record import canonical_json, record_hash

N = 10


def make_log(path: Path, count: int = N) -> list[bytes]:
    """Write `count` records; return the lines (with their newlines)."""
    with AuditLog.open(path) as log:
        for n in range(count):
            log.append("device.decision", {"n": n, "verdict": "blocked", "serial": f"SN{n}"})
    return path.read_bytes().splitlines(keepends=True)


def forge(obj: dict[str, object]) -> bytes:
    """A line for `obj` with a correctly recomputed hash, as a forger would write it."""
    body = {k: v for k, v in obj.items() if k != "hash"}
    return (canonical_json({**body, "hash": record_hash(body)}) + "\n").encode()


def bad(result: VerifyResult, line: int | None, problem: str) -> None:
    assert result == VerifyResult(
        ok=False, records=result.records, first_bad_line=line, problem=problem
    )


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "audit.log"


@pytest.fixture
def lines(path: Path) -> list[bytes]:
    return make_log(path)


def rewrite(path: Path, lines: list[bytes]) -> None:
    path.write_bytes(b"".join(lines))


def test_an_untouched_log_verifies(path: Path, lines: list[bytes]) -> None:
    assert verify(path) == VerifyResult(ok=True, records=N, first_bad_line=None, problem="")


def test_edited_field_is_caught(path: Path, lines: list[bytes]) -> None:
    obj = json.loads(lines[6])
    obj["data"]["verdict"] = "allowed"
    lines[6] = (canonical_json(obj) + "\n").encode()
    rewrite(path, lines)
    result = verify(path)
    bad(result, 7, "line 7: record was altered (its hash does not match its content)")
    assert result.records == 6


def test_edit_with_recomputed_hash_breaks_the_chain(path: Path, lines: list[bytes]) -> None:
    obj = json.loads(lines[6])
    obj["data"]["verdict"] = "allowed"
    lines[6] = forge(obj)
    rewrite(path, lines)
    bad(verify(path), 8, "line 8: chain broken: prev does not match the hash of line 7")


def test_reformatted_line_with_same_content_still_verifies(path: Path, lines: list[bytes]) -> None:
    # The hash covers the content, not the spelling: pretty-printing keys is not an edit.
    lines[3] = (json.dumps(json.loads(lines[3]), separators=(", ", ": ")) + "\n").encode()
    rewrite(path, lines)
    assert verify(path).ok


def test_deleted_middle_line_is_caught(path: Path, lines: list[bytes]) -> None:
    del lines[7]
    rewrite(path, lines)
    bad(
        verify(path), 8, "line 8: a record before it was removed or reordered (seq 9 follows seq 7)"
    )


def test_deleted_first_line_is_caught(path: Path, lines: list[bytes]) -> None:
    del lines[0]
    rewrite(path, lines)
    bad(verify(path), 1, "line 1: the log starts at seq 2 (records before it were removed)")


def test_deleted_last_lines_are_caught_by_the_head(path: Path, lines: list[bytes]) -> None:
    rewrite(path, lines[:-2])
    result = verify(path)
    bad(
        result, 9, "2 records at the end were removed (the head says seq 10, the log ends at seq 8)"
    )
    assert result.records == 8


def test_one_deleted_last_line_is_caught(path: Path, lines: list[bytes]) -> None:
    rewrite(path, lines[:-1])
    bad(
        verify(path),
        10,
        "1 record at the end was removed (the head says seq 10, the log ends at seq 9)",
    )


def test_all_lines_deleted_is_caught(path: Path, lines: list[bytes]) -> None:
    rewrite(path, [])
    bad(
        verify(path),
        1,
        f"{N} records at the end were removed (the head says seq {N}, the log ends at seq 0)",
    )


def test_swapped_lines_are_caught(path: Path, lines: list[bytes]) -> None:
    lines[4], lines[5] = lines[5], lines[4]
    rewrite(path, lines)
    bad(
        verify(path), 5, "line 5: a record before it was removed or reordered (seq 6 follows seq 4)"
    )


def test_forged_line_with_its_own_valid_hash_breaks_the_chain(
    path: Path, lines: list[bytes]
) -> None:
    forged = json.loads(lines[3])
    forged["seq"] = 5
    forged["data"] = {"verdict": "allowed", "serial": "FORGED"}
    forged["prev"] = "f" * 64  # the forger does not know which hash to link to
    lines.insert(4, forge(forged))
    rewrite(path, lines)
    bad(verify(path), 5, "line 5: chain broken: prev does not match the hash of line 4")


def test_forged_line_linked_into_the_chain_is_caught_after_it(
    path: Path, lines: list[bytes]
) -> None:
    previous = json.loads(lines[3])
    forged = {**previous, "seq": 5, "prev": previous["hash"], "data": {"verdict": "allowed"}}
    lines.insert(4, forge(forged))
    rewrite(path, lines)
    # The forgery itself links correctly; the genuine record after it no longer fits.
    bad(
        verify(path),
        6,
        "line 6: a record before it was inserted or reordered (seq 5 follows seq 5)",
    )


def test_forged_first_line_must_start_the_chain(path: Path, lines: list[bytes]) -> None:
    first = json.loads(lines[0])
    lines[0] = forge({**first, "prev": "a" * 64})
    rewrite(path, lines)
    bad(
        verify(path), 1, "line 1: chain broken: the first record's prev is not the start of a chain"
    )


def test_rewritten_tail_is_caught_by_the_head(path: Path, lines: list[bytes]) -> None:
    # Remove the last two records and forge two replacements chained correctly: the chain
    # and seq are consistent, but the record at the head's seq is not the one it names.
    kept = lines[:-2]
    prev = json.loads(kept[-1])
    for seq in (9, 10):
        obj = {**prev, "seq": seq, "prev": prev["hash"], "data": {"verdict": "allowed"}}
        line = forge(obj)
        kept.append(line)
        prev = json.loads(line)
    rewrite(path, kept)
    bad(
        verify(path),
        10,
        "line 10: record seq 10 is not the one the head names "
        "(the records from there on were replaced)",
    )


def test_truncated_last_line_is_caught(path: Path, lines: list[bytes]) -> None:
    path.write_bytes(b"".join(lines)[:-15])
    bad(
        verify(path),
        N,
        f"line {N}: the last line is incomplete (no newline at its end: a write was cut short)",
    )


def test_missing_final_newline_is_caught(path: Path, lines: list[bytes]) -> None:
    path.write_bytes(b"".join(lines)[:-1])
    assert verify(path).first_bad_line == N


def test_garbage_line_is_caught(path: Path, lines: list[bytes]) -> None:
    lines[2] = b"\xff\xfe not json\n"
    rewrite(path, lines)
    bad(verify(path), 3, "line 3: not valid JSON")


def test_deeply_nested_garbage_is_just_invalid(path: Path, lines: list[bytes]) -> None:
    lines[2] = b"[" * 100_000 + b"\n"
    rewrite(path, lines)
    bad(verify(path), 3, "line 3: not valid JSON")


@pytest.mark.parametrize(
    "replacement",
    [
        b"{}\n",
        b"[1, 2]\n",
        b'{"seq":"3","ts":"","event":"","data":{},"prev":"","hash":""}\n',
        b'{"seq":3,"ts":"","event":"","data":[],"prev":"","hash":""}\n',
        b'{"seq":true,"ts":"","event":"","data":{},"prev":"","hash":""}\n',
        b'{"seq":3,"ts":"","event":"","data":{},"prev":"","hash":"","extra":1}\n',
        b'{"seq":3,"ts":"","event":"","data":{"x":NaN},"prev":"","hash":""}\n',
    ],
)
def test_json_that_is_not_a_record_is_caught(
    path: Path, lines: list[bytes], replacement: bytes
) -> None:
    lines[2] = replacement
    rewrite(path, lines)
    bad(verify(path), 3, "line 3: not an audit record (fields missing or of the wrong type)")


def test_no_log_and_no_head_is_an_empty_trail(path: Path) -> None:
    assert verify(path) == VerifyResult(ok=True, records=0, first_bad_line=None, problem="")


def test_empty_log_without_head_is_an_empty_trail(path: Path) -> None:
    path.write_bytes(b"")
    assert verify(path).ok


def test_removed_log_is_caught(path: Path, lines: list[bytes]) -> None:
    path.unlink()
    bad(verify(path), None, "the log file was removed")


def test_removed_head_is_caught(path: Path, lines: list[bytes]) -> None:
    head_path_for(path).unlink()
    result = verify(path)
    assert not result.ok
    assert result.problem.startswith("the head file is missing")


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"garbage",
        b"[]",
        b'{"seq":0,"hash":"' + b"a" * 64 + b'"}',
        b'{"seq":-1,"hash":"' + b"0" * 64 + b'"}',
        b'{"seq":false,"hash":"' + b"0" * 64 + b'"}',
        b'{"seq":3,"hash":"xyz"}',
    ],
)
def test_damaged_head_is_caught(path: Path, lines: list[bytes], content: bytes) -> None:
    head_path_for(path).write_bytes(content)
    result = verify(path)
    assert not result.ok
    assert result.first_bad_line is None
    assert result.problem.startswith("the head file is damaged")


def test_problems_in_the_log_come_before_head_problems(path: Path, lines: list[bytes]) -> None:
    head_path_for(path).write_bytes(b"garbage")
    lines[2] = b"junk\n"
    rewrite(path, lines)
    assert verify(path).first_bad_line == 3


def test_head_of_an_empty_trail_is_accepted(path: Path, lines: list[bytes]) -> None:
    head_path_for(path).write_text(json.dumps({"seq": 0, "hash": GENESIS_HASH}))
    assert verify(path).ok
    path.write_bytes(b"")
    assert verify(path).ok


def test_head_behind_the_log_is_accepted(path: Path, lines: list[bytes]) -> None:
    # A kill -9 between writing a record and moving the head leaves the head one behind.
    obj = json.loads(lines[-2])
    head_path_for(path).write_text(json.dumps({"seq": obj["seq"], "hash": obj["hash"]}))
    assert verify(path).ok


def test_head_behind_but_naming_another_record_is_caught(path: Path, lines: list[bytes]) -> None:
    head_path_for(path).write_text(json.dumps({"seq": 5, "hash": "e" * 64}))
    assert verify(path).first_bad_line == 5


def test_removed_damaged_line_is_still_noticed(path: Path, lines: list[bytes]) -> None:
    path.write_bytes(path.read_bytes() + b"garbage\n")
    AuditLog.open(path).close()  # records the damage at line 11
    rewrite(
        path, [line for line in path.read_bytes().splitlines(keepends=True) if line != b"garbage\n"]
    )
    bad(
        verify(path),
        11,
        "line 11: the daemon found line 11 damaged when it restarted, "
        "and that line has since been removed or replaced",
    )


def test_line_separators_inside_strings_do_not_split_records(path: Path) -> None:
    with AuditLog.open(path) as log:
        log.append("device.decision", {"serial": "a\u2028b\u2029c\x85d\x1ce\x0cf"})
        log.append("device.decision", {"serial": "ok"})
    assert verify(path) == VerifyResult(ok=True, records=2, first_bad_line=None, problem="")


def test_large_log_verifies(path: Path) -> None:
    count = 100_000
    with AuditLog.open(path) as log:
        for n in range(count):
            log.append("device.decision", {"n": n, "verdict": "allowed", "device": "1-2"})
    assert verify(path) == VerifyResult(ok=True, records=count, first_bad_line=None, problem="")


def test_first_record_prev_is_the_genesis_hash(path: Path, lines: list[bytes]) -> None:
    assert json.loads(lines[0])["prev"] == GENESIS_HASH
