"""What a scan found: per-file outcomes, the medium's verdict, and the sentence staff read.

Paths are kept as the raw bytes the filesystem gave (names on a stick may be invalid UTF-8 or
contain newlines); they are turned into text only for display, escaped so a hostile name
cannot draw on a terminal or forge a line in a log.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

# A medium with 50,000 symbolic links must not make a report of 50,000 entries: past this many
# entries of one kind the report lists no more, but still counts them all (see `omitted`).
MAX_LISTED = 1000

LIMITS_PREFIX = "Heuristics.Limits.Exceeded"


class FileOutcome(StrEnum):
    """What happened to one file (or folder) of the medium."""

    CLEAN = "clean"
    INFECTED = "infected"
    LIMITS_EXCEEDED = "limits-exceeded"  # too big or too deep for the scanner to look inside
    UNREADABLE = "unreadable"
    SKIPPED = "skipped"  # links, special files, other filesystems: nothing clamd can scan
    CHANGED = "changed"  # modified or replaced while it was scanned, twice
    ERROR = "error"


# Outcomes that stop a medium from being called clean (the file was not fully scanned).
PROBLEMS = frozenset(
    {FileOutcome.LIMITS_EXCEEDED, FileOutcome.UNREADABLE, FileOutcome.CHANGED, FileOutcome.ERROR}
)


def display_path(raw: bytes) -> str:
    """A raw path as one line of safe text: invalid UTF-8 bytes become \\xNN, control and
    formatting characters (newline, ESC, right-to-left override) \\xNN or \\uNNNN, and a real
    backslash is doubled so every escape is unambiguous."""
    out: list[str] = []
    for char in raw.decode("utf-8", "surrogateescape"):
        code = ord(char)
        if 0xDC80 <= code <= 0xDCFF:  # an undecodable byte, smuggled through surrogateescape
            out.append(f"\\x{code - 0xDC00:02x}")
        elif char == "\\":
            out.append("\\\\")
        elif char.isprintable():
            out.append(char)
        elif code <= 0xFF:
            out.append(f"\\x{code:02x}")
        else:
            out.append(f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}")
    return "".join(out)


@dataclass(frozen=True)
class FileResult:
    """One file's outcome; `path` is relative to the scanned root, raw bytes."""

    path: bytes
    outcome: FileOutcome
    signature: str = ""
    detail: str = ""

    @property
    def display_path(self) -> str:
        """The path as safe, one-line text."""
        return display_path(self.path)


class ScanVerdict(StrEnum):
    """The medium as a whole."""

    CLEAN = "clean"
    INFECTED = "infected"
    NOT_SCANNED = "not-scanned"


@dataclass(frozen=True)
class Progress:
    """Regular files done so far, out of those the count pass found."""

    files_done: int
    files_total: int


@dataclass(frozen=True)
class ScanReport:
    """The outcome of one scan: verdict, counts, what was found, and a sentence for staff."""

    verdict: ScanVerdict
    files_total: int
    files_scanned: int
    from_cache: int
    infected: tuple[FileResult, ...]
    problems: tuple[FileResult, ...]
    skipped: tuple[FileResult, ...]
    db_version: int
    seconds: float
    reason: str
    omitted: int = 0  # entries counted but not listed (past MAX_LISTED of one kind)
    retryable: bool = False  # clamd could not be reached: the same scan later may succeed

    def to_json(self) -> dict[str, Any]:
        """The report as plain JSON data (display paths, never raw bytes)."""
        return {
            "verdict": str(self.verdict),
            "reason": self.reason,
            "files_total": self.files_total,
            "files_scanned": self.files_scanned,
            "from_cache": self.from_cache,
            "infected": [{"path": r.display_path, "signature": r.signature} for r in self.infected],
            "problems": [
                {
                    "path": r.display_path,
                    "outcome": str(r.outcome),
                    "signature": r.signature,
                    "detail": r.detail,
                }
                for r in self.problems
            ],
            "skipped": [{"path": r.display_path, "detail": r.detail} for r in self.skipped],
            "omitted": self.omitted,
            "db_version": self.db_version,
            "seconds": round(self.seconds, 3),
        }


def _n(count: int, one: str, many: str) -> str:
    return f"{count:,} {one if count == 1 else many}"


_PROBLEM_WORDS = {
    FileOutcome.LIMITS_EXCEEDED: (
        "file is too big to scan (limits exceeded)",
        "files are too big to scan (limits exceeded)",
    ),
    FileOutcome.UNREADABLE: ("file could not be read", "files could not be read"),
    FileOutcome.CHANGED: (
        "file kept changing while it was scanned",
        "files kept changing while they were scanned",
    ),
    FileOutcome.ERROR: (
        "file could not be scanned (scanner error)",
        "files could not be scanned (scanner error)",
    ),
}


def threat_name(signature: str) -> str:
    """A plain name for what a signature found ('EICAR test file', else 'a virus')."""
    return "EICAR test file" if "eicar" in signature.lower() else "a virus"


@dataclass
class Tally:
    """Results collected while a scan runs (thread-safe); `report()` makes the ScanReport."""

    files_total: int = 0
    files_done: int = 0  # regular files whatever their outcome
    files_scanned: int = 0  # regular files with a verdict from clamd or the cache
    from_cache: int = 0
    counts: dict[FileOutcome, int] = field(default_factory=dict)
    infected: list[FileResult] = field(default_factory=list)
    problems: list[FileResult] = field(default_factory=list)
    skipped: list[FileResult] = field(default_factory=list)
    too_deep: int = 0  # folders the walk did not enter (guardd's depth limit)
    omitted: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, result: FileResult, regular_file: bool, cached: bool = False) -> None:
        """Record one outcome (`regular_file`: it was one of the files the count pass saw)."""
        with self.lock:
            if result.outcome is FileOutcome.LIMITS_EXCEEDED and not result.signature:
                self.too_deep += 1  # counted apart: it is a folder, not a file too big
            else:
                self.counts[result.outcome] = self.counts.get(result.outcome, 0) + 1
            if regular_file:
                self.files_done += 1
            if result.outcome in (FileOutcome.CLEAN, FileOutcome.INFECTED):
                self.files_scanned += 1
                self.from_cache += cached
            if result.outcome is FileOutcome.INFECTED:
                self._list(self.infected, result)
            elif result.outcome in PROBLEMS:
                self._list(self.problems, result)
            elif result.outcome is FileOutcome.SKIPPED:
                self._list(self.skipped, result)

    def _list(self, into: list[FileResult], result: FileResult) -> None:
        if len(into) < MAX_LISTED:
            into.append(result)
        else:
            self.omitted += 1

    def count(self, outcome: FileOutcome) -> int:
        """How many results had this outcome."""
        return self.counts.get(outcome, 0)

    def report(
        self, db_version: int, seconds: float, stopped: str = "", retryable: bool = False
    ) -> ScanReport:
        """The final report; `stopped` is why the scan did not finish ('' if it did), and
        `retryable` whether that was clamd being unreachable."""
        with self.lock:
            for listed in (self.infected, self.problems, self.skipped):
                listed.sort(key=lambda r: r.path)  # workers finish in any order: be stable
            verdict, reason = self._verdict(stopped)
            return ScanReport(
                verdict=verdict,
                files_total=max(self.files_total, self.files_done),
                files_scanned=self.files_scanned,
                from_cache=self.from_cache,
                infected=tuple(self.infected),
                problems=tuple(self.problems),
                skipped=tuple(self.skipped),
                db_version=db_version,
                seconds=seconds,
                reason=reason,
                omitted=self.omitted,
                retryable=retryable and verdict is not ScanVerdict.INFECTED,
            )

    def _verdict(self, stopped: str) -> tuple[ScanVerdict, str]:
        if self.infected:
            reason = self._infected_reason()
            if stopped:
                reason += f" (the scan did not finish: {stopped})"
            return ScanVerdict.INFECTED, reason
        if stopped:
            return ScanVerdict.NOT_SCANNED, stopped
        problems = [
            _n(self.count(outcome), *words)
            for outcome, words in _PROBLEM_WORDS.items()
            if self.count(outcome)
        ]
        if self.too_deep:
            problems.append(
                _n(self.too_deep, "folder is", "folders are") + " nested too deeply to scan"
            )
        if problems:
            return ScanVerdict.NOT_SCANNED, "not scanned: " + ", ".join(problems)
        return ScanVerdict.CLEAN, self._clean_reason()

    def _infected_reason(self) -> str:
        first = self.infected[0]
        found = f"{threat_name(first.signature)} found in '{first.display_path}'"
        total = self.count(FileOutcome.INFECTED)
        if total == 1:
            return f"infected: {found} ({first.signature})"
        return f"infected: {_n(total, 'file', 'files')} infected; {found} ({first.signature})"

    def _clean_reason(self) -> str:
        reason = f"clean: {_n(self.files_scanned, 'file', 'files')} scanned"
        skipped = self.count(FileOutcome.SKIPPED)
        if skipped:
            reason += f", {_n(skipped, 'link or special file', 'links or special files')} skipped"
        return reason
