"""The scanner's own logic, with a stand-in engine: verdicts, workers stopping, the cache,
files replaced mid-scan, progress. The same paths run against a real clamd in
tests/integration/test_scan_clamd.py."""

from __future__ import annotations

import errno
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from guardd.scanning.cache import ScanCache
from guardd.scanning.clamd import ClamdScanError, ClamdUnavailable, ClamdVersion
from guardd.scanning.result import FileOutcome, Progress, ScanVerdict
from guardd.scanning.scanner import CANCELLED, NO_ANSWER, NOT_RUNNING, Scanner

VIRUS = b"<virus>"
HUGE = b"<huge>"


class Engine:
    """Answers FOUND for content holding VIRUS, a limits signature for HUGE, else OK."""

    def __init__(self, db_version: int = 3) -> None:
        self.db_version = db_version
        self.seen: list[bytes] = []
        self.lock = threading.Lock()
        self.before_answer: Callable[[int], None] | None = None  # called with the call number

    def version(self) -> ClamdVersion:
        return ClamdVersion("ClamAV test", self.db_version, "")

    def scan_fd(self, fd: int) -> tuple[str, str]:
        data = b""
        while block := os.read(fd, 65536):  # from the current offset: the scanner rewound
            data += block
        with self.lock:
            self.seen.append(data)
            calls = len(self.seen)
        if self.before_answer is not None:
            self.before_answer(calls)
        if VIRUS in data:
            return "FOUND", "Test.Virus"
        if HUGE in data:
            return "FOUND", "Heuristics.Limits.Exceeded.MaxFileSize"
        return "OK", ""


def tree(root: Path, count: int, extra: dict[str, bytes] | None = None) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        sub = root / f"d{i % 7}"
        sub.mkdir(exist_ok=True)
        (sub / f"f{i}.txt").write_bytes(b"file number %d\n" % i)
    for rel, data in (extra or {}).items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    return root


def test_clean_tree(tmp_path: Path) -> None:
    engine = Engine()
    seen: list[Progress] = []
    report = Scanner(engine, None).scan_tree(tree(tmp_path / "m", 50), progress=seen.append)
    assert report.verdict is ScanVerdict.CLEAN
    assert (report.files_total, report.files_scanned, report.from_cache) == (50, 50, 0)
    assert sorted(engine.seen) == sorted(b"file number %d\n" % i for i in range(50))
    assert seen[0] == Progress(0, 50)
    assert seen[-1] == Progress(50, 50)
    assert report.db_version == 3


def test_infected_and_limits(tmp_path: Path) -> None:
    root = tree(tmp_path / "m", 5, {"a/evil.exe": b"x" + VIRUS, "big.iso": HUGE})
    report = Scanner(Engine(), None).scan_tree(root)
    assert report.verdict is ScanVerdict.INFECTED
    assert [(r.path, r.signature) for r in report.infected] == [(b"a/evil.exe", "Test.Virus")]
    assert [(r.path, r.outcome) for r in report.problems] == [
        (b"big.iso", FileOutcome.LIMITS_EXCEEDED)
    ]


def test_limits_exceeded_is_not_clean_unless_accepted(tmp_path: Path) -> None:
    root = tree(tmp_path / "m", 5, {"big.iso": HUGE})
    strict = Scanner(Engine(), None).scan_tree(root)
    assert strict.verdict is ScanVerdict.NOT_SCANNED
    assert strict.reason == "not scanned: 1 file is too big to scan (limits exceeded)"
    lenient = Scanner(Engine(), None, accept_limits_exceeded=True).scan_tree(root)
    assert lenient.verdict is ScanVerdict.CLEAN
    assert lenient.files_scanned == 6


def test_a_scan_error_or_a_surprise_costs_one_file(tmp_path: Path) -> None:
    engine = Engine()

    def trouble(call: int) -> None:
        if call == 2:
            raise ClamdScanError("fd[9]: Can't read file")
        if call == 4:
            raise RuntimeError("a bug")

    engine.before_answer = trouble
    report = Scanner(engine, None, workers=1).scan_tree(tree(tmp_path / "m", 10))
    assert report.verdict is ScanVerdict.NOT_SCANNED
    assert [r.outcome for r in report.problems] == [FileOutcome.ERROR, FileOutcome.ERROR]
    assert {r.detail for r in report.problems} == {
        "fd[9]: Can't read file",
        "RuntimeError('a bug')",
    }
    assert report.files_scanned == 8


@pytest.mark.parametrize(("timed_out", "reason"), [(False, NOT_RUNNING), (True, NO_ANSWER)])
def test_clamd_going_away_stops_every_worker(tmp_path: Path, timed_out: bool, reason: str) -> None:
    engine = Engine()

    def away(call: int) -> None:
        if call >= 20:
            raise ClamdUnavailable("gone", timed_out=timed_out)

    engine.before_answer = away
    report = Scanner(engine, None, workers=4).scan_tree(tree(tmp_path / "m", 500))
    assert report.verdict is ScanVerdict.NOT_SCANNED
    assert report.reason == reason
    assert len(engine.seen) < 20 + 4  # the others stopped: at most one more try each
    assert report.files_scanned < 20


def test_clamd_not_there_at_all(tmp_path: Path) -> None:
    class Down(Engine):
        def version(self) -> ClamdVersion:
            raise ClamdUnavailable("no socket")

    engine = Down()
    report = Scanner(engine, None).scan_tree(tree(tmp_path / "m", 5))
    assert (report.verdict, report.reason) == (ScanVerdict.NOT_SCANNED, NOT_RUNNING)
    assert engine.seen == []


def test_cancel(tmp_path: Path) -> None:
    cancel = threading.Event()
    engine = Engine()
    engine.before_answer = lambda call: cancel.set() if call == 10 else None
    report = Scanner(engine, None, workers=2).scan_tree(tree(tmp_path / "m", 300), cancel=cancel)
    assert (report.verdict, report.reason) == (ScanVerdict.NOT_SCANNED, CANCELLED)
    assert len(engine.seen) < 20


def test_a_missing_root(tmp_path: Path) -> None:
    report = Scanner(Engine(), None).scan_tree(tmp_path / "nowhere")
    assert report.verdict is ScanVerdict.NOT_SCANNED
    assert report.reason == "not scanned: the folder cannot be opened (No such file or directory)"


# --- the cache -----------------------------------------------------------------------------


def test_a_second_scan_comes_from_the_cache(tmp_path: Path) -> None:
    root = tree(tmp_path / "m", 40, {"evil": VIRUS, "big": HUGE})
    cache = ScanCache(tmp_path / "cache.db")
    engine = Engine(db_version=3)
    first = Scanner(engine, cache).scan_tree(root)
    assert first.from_cache == 0
    assert len(engine.seen) == 42
    second = Scanner(engine, cache).scan_tree(root)
    assert (second.from_cache, second.files_scanned) == (40, 41)
    assert sorted(engine.seen[42:]) == [HUGE, VIRUS]  # never cached: infected, limits
    assert second.verdict is ScanVerdict.INFECTED
    engine.db_version = 4  # a new database
    third = Scanner(engine, cache).scan_tree(root)
    assert third.from_cache == 0
    assert len(engine.seen) == 42 + 2 + 42
    cache.close()


def test_no_cache_without_a_database_version(tmp_path: Path) -> None:
    root = tree(tmp_path / "m", 10)
    cache = ScanCache(tmp_path / "cache.db")
    engine = Engine(db_version=0)
    Scanner(engine, cache).scan_tree(root)
    assert Scanner(engine, cache).scan_tree(root).from_cache == 0
    assert len(engine.seen) == 20
    assert len(cache) == 0
    cache.close()


# --- files changing under the scan -----------------------------------------------------------


def replace(path: Path, data: bytes) -> None:
    """Swap a new file in under the name (what an editor's save does)."""
    new = path.with_name(path.name + ".new")
    new.write_bytes(data)
    new.rename(path)


def test_a_file_replaced_once_is_scanned_again(tmp_path: Path) -> None:
    root = tree(tmp_path / "m", 0, {"doc.txt": b"version 1"})
    engine = Engine()
    scanner = Scanner(engine, None, workers=1)
    swaps = [b"version 2"]

    def swap_once(path: bytes) -> None:
        if swaps:
            replace(root / os.fsdecode(path), swaps.pop())

    scanner.on_scanned = swap_once
    report = scanner.scan_tree(root)
    assert engine.seen == [b"version 1", b"version 2"]
    assert report.verdict is ScanVerdict.CLEAN


def test_a_file_that_keeps_changing_is_not_clean(tmp_path: Path) -> None:
    root = tree(tmp_path / "m", 3, {"doc.txt": b"version 0"})
    counter = iter(range(1, 100))
    scanner = Scanner(Engine(), None, workers=1)

    def swap(path: bytes) -> None:
        if path == b"doc.txt":
            replace(root / "doc.txt", b"version %d" % next(counter))

    scanner.on_scanned = swap
    report = scanner.scan_tree(root)
    assert report.verdict is ScanVerdict.NOT_SCANNED
    assert [(r.path, r.outcome) for r in report.problems] == [(b"doc.txt", FileOutcome.CHANGED)]
    assert report.reason == "not scanned: 1 file kept changing while it was scanned"


def test_a_file_written_in_place_is_caught_too(tmp_path: Path) -> None:
    root = tree(tmp_path / "m", 0, {"log.txt": b"line\n"})
    scanner = Scanner(Engine(), None, workers=1)

    def append(path: bytes) -> None:
        with (root / "log.txt").open("ab") as f:
            f.write(b"more\n")

    scanner.on_scanned = append
    report = scanner.scan_tree(root)
    assert [r.outcome for r in report.problems] == [FileOutcome.CHANGED]


def test_a_change_never_clears_an_infection(tmp_path: Path) -> None:
    root = tree(tmp_path / "m", 0, {"evil": VIRUS})
    engine = Engine()
    scanner = Scanner(engine, None, workers=1)
    scanner.on_scanned = lambda path: replace(root / "evil", b"harmless now")
    report = scanner.scan_tree(root)
    assert report.verdict is ScanVerdict.INFECTED
    assert engine.seen == [VIRUS]


def test_a_file_swapped_for_a_link_is_not_followed(tmp_path: Path) -> None:
    outside = tmp_path / "outside.com"
    outside.write_bytes(VIRUS)
    root = tree(tmp_path / "m", 0, {"doc.txt": b"harmless"})
    engine = Engine()
    scanner = Scanner(engine, None, workers=1)

    def to_link(path: bytes) -> None:
        if not (root / "doc.txt").is_symlink():
            (root / "doc.txt").unlink()
            os.symlink(outside, root / "doc.txt")

    scanner.on_scanned = to_link
    report = scanner.scan_tree(root)
    assert engine.seen == [b"harmless"]  # the second look found a link, and did not follow it
    assert [(r.path, r.detail) for r in report.skipped] == [
        (b"doc.txt", "symbolic link, not followed")
    ]


def test_a_changed_file_is_not_cached(tmp_path: Path) -> None:
    root = tree(tmp_path / "m", 0, {"doc.txt": b"v"})
    cache = ScanCache(tmp_path / "cache.db")
    scanner = Scanner(Engine(), cache, workers=1)
    scanner.on_scanned = lambda path: replace(root / "doc.txt", b"v" + os.urandom(8))
    scanner.scan_tree(root)
    assert len(cache) == 0
    cache.close()


# --- what the scan must never do -------------------------------------------------------------


def test_no_link_is_followed_and_nothing_is_touched(tmp_path: Path) -> None:
    outside = tmp_path / "outside.txt"
    outside.write_bytes(VIRUS)
    root = tree(tmp_path / "m", 5)
    os.symlink(outside, root / "link.txt")
    os.symlink(tmp_path, root / "up")
    old = time.time_ns() - 10**18 // 1000  # atime well before mtime: relatime would update it
    for f in (root / "d0").iterdir():
        os.utime(f, ns=(old, f.stat().st_mtime_ns))
    before = {f: (f.stat().st_atime_ns, f.stat().st_mtime_ns) for f in (root / "d0").iterdir()}
    engine = Engine()
    report = Scanner(engine, None).scan_tree(root)
    assert report.verdict is ScanVerdict.CLEAN
    assert VIRUS not in engine.seen
    assert {r.path for r in report.skipped} == {b"link.txt", b"up"}
    assert before == {f: (f.stat().st_atime_ns, f.stat().st_mtime_ns) for f in before}


def test_an_unreadable_file_is_a_problem(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tree(tmp_path / "m", 3, {"locked.txt": b"x"})
    real_open = os.open

    def refuse(path: Any, flags: int, *args: Any, **kwargs: Any) -> int:
        if path == b"locked.txt":
            raise PermissionError(errno.EACCES, "Permission denied")
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", refuse)
    report = Scanner(Engine(), None).scan_tree(root)
    assert report.verdict is ScanVerdict.NOT_SCANNED
    assert report.reason == "not scanned: 1 file could not be read"
    assert report.problems[0].detail == "Permission denied"


def test_progress_is_throttled_and_ends_complete(tmp_path: Path) -> None:
    engine = Engine()
    engine.before_answer = lambda call: time.sleep(0.002)
    seen: list[Progress] = []
    started = time.monotonic()
    report = Scanner(engine, None, workers=2).scan_tree(tree(tmp_path / "m", 400), seen.append)
    elapsed = time.monotonic() - started
    assert report.files_scanned == 400
    assert len(seen) <= elapsed / 0.1 + 3
    assert len(seen) >= 3  # start, some in between, end
    assert seen[-1] == Progress(400, 400)
    assert [p.files_done for p in seen] == sorted(p.files_done for p in seen)


def test_a_failing_progress_callback_does_not_stop_the_scan(tmp_path: Path) -> None:
    def broken(progress: Progress) -> None:
        raise ValueError("oops")

    report = Scanner(Engine(), None).scan_tree(tree(tmp_path / "m", 20), broken)
    assert report.verdict is ScanVerdict.CLEAN


# --- scan_paths ----------------------------------------------------------------------------


def test_scan_paths_scans_just_those(tmp_path: Path) -> None:
    root = tree(tmp_path / "m", 20, {"new/evil.doc": VIRUS, "new/ok.doc": b"fine"})
    engine = Engine()
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        report = Scanner(engine, None).scan_paths(fd, [b"new/evil.doc", b"new/ok.doc", b"gone"])
    finally:
        os.close(fd)
    assert sorted(engine.seen) == [VIRUS, b"fine"]
    assert report.verdict is ScanVerdict.INFECTED
    assert report.files_total == 2
    assert [r.path for r in report.skipped] == [b"gone"]
