"""Check an audit log end to end: every hash, every link of the chain, and the head.

The log is streamed line by line, so a log of any size is checked in constant memory. The
first problem found is reported in plain English with its line number; the chain after a
broken link cannot be trusted anyway, and IT needs to know where to start looking.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from guardd.audit.head import head_path_for, read_head
from guardd.audit.log import EVENT_RESUMED_AFTER_DAMAGE, EVENT_RESUMED_AFTER_TRUNCATION
from guardd.audit.record import GENESIS_HASH, AuditRecord, parse_record

_PARSE_PROBLEMS = {
    "not valid JSON": "not valid JSON",
    "not an audit record": "not an audit record (fields missing or of the wrong type)",
    "altered": "record was altered (its hash does not match its content)",
}


@dataclass(frozen=True)
class VerifyResult:
    """The verdict on one audit log.

    `records` counts the good records read before the first problem (all of them when ok).
    `first_bad_line` is the 1-based line of the first problem; when records were removed
    from the end it is the line where the first missing record belongs; None when ok or when
    the problem is not in a line (a damaged head file, a removed log).
    """

    ok: bool
    records: int
    first_bad_line: int | None
    problem: str  # "" when ok


class _Chain:
    """Walks the records in order, remembering what the next one must link to."""

    def __init__(self, head: tuple[int, str] | None) -> None:
        self.lines = 0
        self.records = 0
        self.seq = 0
        self.hash = GENESIS_HASH
        self._head_seq = head[0] if head is not None else None
        self.head_record: tuple[int, str] | None = None  # (line, hash) of the head's seq

    def feed(self, raw: bytes) -> str | None:
        """Check the next line; return the problem with it, or None."""
        self.lines += 1
        if not raw.endswith(b"\n"):
            return "the last line is incomplete (no newline at its end: a write was cut short)"
        try:
            record = parse_record(raw[:-1])
        except ValueError as exc:
            return _PARSE_PROBLEMS.get(str(exc), str(exc))
        problem = self._link_problem(record) or _event_problem(record)
        if problem is None:
            self.records += 1
            self.seq, self.hash = record.seq, record.hash
            if record.seq == self._head_seq:
                self.head_record = (self.lines, record.hash)
        return problem

    def _link_problem(self, record: AuditRecord) -> str | None:
        if record.seq != self.seq + 1:
            if self.lines == 1:
                return f"the log starts at seq {record.seq} (records before it were removed)"
            how = "removed" if record.seq > self.seq else "inserted"
            return (
                f"a record before it was {how} or reordered "
                f"(seq {record.seq} follows seq {self.seq})"
            )
        if record.prev != self.hash:
            if self.lines == 1:
                return "chain broken: the first record's prev is not the start of a chain"
            return f"chain broken: prev does not match the hash of line {self.lines - 1}"
        return None


def _event_problem(record: AuditRecord) -> str | None:
    """The daemon's own damage reports are problems as long as they are in the log."""
    data = record.data
    if record.event == EVENT_RESUMED_AFTER_TRUNCATION:
        return (
            "the daemon found the log cut short when it restarted "
            f"(the head said seq {data.get('head_seq')}, the log ended at seq "
            f"{data.get('log_seq')})"
        )
    if record.event == EVENT_RESUMED_AFTER_DAMAGE:
        # Normally the damaged line itself is reported first; reaching this record means
        # that line has since been removed or replaced.
        return (
            f"the daemon found line {data.get('damaged_line')} damaged when it restarted, "
            "and that line has since been removed or replaced"
        )
    return None


def verify(path: Path) -> VerifyResult:
    """Verify the audit log at `path` and its head file; never modifies either.

    A missing log is fine only if its head is missing too (no trail yet). Raises OSError only
    if a file exists but cannot be read.
    """
    # Read the head BEFORE the log: a live writer appends to the log first and replaces the
    # head after, so a head read first can never be ahead of the log read after it.
    try:
        head = read_head(head_path_for(path))
    except ValueError as exc:
        return _check_log(path, None, head_problem=f"the head file is damaged ({exc})")
    return _check_log(path, head, head_problem=None)


def _check_log(path: Path, head: tuple[int, str] | None, head_problem: str | None) -> VerifyResult:
    chain = _Chain(head)
    try:
        with path.open("rb") as log:
            # Binary lines split on b"\n" only: text mode would also split on U+2028 and
            # friends, which the JSON encoder leaves unescaped inside strings.
            for raw in log:
                problem = chain.feed(raw)
                if problem is not None:
                    return _bad(chain.records, chain.lines, f"line {chain.lines}: {problem}")
    except FileNotFoundError:
        if head is None and head_problem is None:
            return VerifyResult(ok=True, records=0, first_bad_line=None, problem="")
        return _bad(0, None, "the log file was removed")
    if head_problem is not None:
        return _bad(chain.records, None, head_problem)
    return _check_head(chain, head)


def _check_head(chain: _Chain, head: tuple[int, str] | None) -> VerifyResult:
    if head is None:
        if chain.records == 0:
            return VerifyResult(ok=True, records=0, first_bad_line=None, problem="")
        return _bad(
            chain.records,
            None,
            "the head file is missing, so removal of records at the end cannot be ruled out",
        )
    head_seq, head_hash = head
    if head_seq > chain.seq:
        missing = head_seq - chain.seq
        what = "1 record at the end was" if missing == 1 else f"{missing} records at the end were"
        return _bad(
            chain.records,
            chain.lines + 1,
            f"{what} removed (the head says seq {head_seq}, the log ends at seq {chain.seq})",
        )
    if chain.head_record is not None and chain.head_record[1] != head_hash:
        line = chain.head_record[0]
        return _bad(
            chain.records,
            line,
            f"line {line}: record seq {head_seq} is not the one the head names "
            "(the records from there on were replaced)",
        )
    return VerifyResult(ok=True, records=chain.records, first_bad_line=None, problem="")


def _bad(records: int, line: int | None, problem: str) -> VerifyResult:
    return VerifyResult(ok=False, records=records, first_bad_line=line, problem=problem)
