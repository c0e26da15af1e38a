"""Scan results: escaped display paths, the medium's verdict, staff sentences, the JSON shape."""

from __future__ import annotations

import json

import pytest

from guardd.scanning.result import (
    MAX_LISTED,
    FileOutcome,
    FileResult,
    ScanVerdict,
    Tally,
    display_path,
)

CLEAN = FileOutcome.CLEAN
EICAR_SIG = "Eicar-Test-Signature"


def tally(*results: FileResult) -> Tally:
    t = Tally(files_total=sum(r.outcome is not FileOutcome.SKIPPED for r in results))
    for r in results:
        t.add(r, regular_file=r.outcome is not FileOutcome.SKIPPED)
    return t


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        (b"docs/report.txt", "docs/report.txt"),
        (b"with space.txt", "with space.txt"),
        ("école/ünï.txt".encode(), "école/ünï.txt"),
        (b"bad\xff\xfename", "bad\\xff\\xfename"),
        (b"two\nlines", "two\\x0alines"),
        (b"\x1b[31mred", "\\x1b[31mred"),
        ("evil\u202etxt.exe".encode(), "evil\\u202etxt.exe"),  # right-to-left override
        (b"back\\slash", "back\\\\slash"),  # doubled: "\\x41" in a name is not an escape
        (b"tab\there", "tab\\x09here"),
    ],
)
def test_display_path_is_one_safe_line(raw: bytes, shown: str) -> None:
    assert display_path(raw) == shown
    assert FileResult(raw, CLEAN).display_path == shown
    assert shown.isprintable()


def test_clean_medium() -> None:
    report = tally(*(FileResult(f"f{i}".encode(), CLEAN) for i in range(5000))).report(7, 1.5)
    assert report.verdict is ScanVerdict.CLEAN
    assert report.reason == "clean: 5,000 files scanned"
    assert (report.files_total, report.files_scanned, report.db_version) == (5000, 5000, 7)
    assert report.infected == report.problems == report.skipped == ()


def test_one_file_and_an_empty_medium_are_clean() -> None:
    assert tally(FileResult(b"a", CLEAN)).report(1, 0).reason == "clean: 1 file scanned"
    empty = Tally().report(1, 0)
    assert (empty.verdict, empty.reason) == (ScanVerdict.CLEAN, "clean: 0 files scanned")


def test_skipped_entries_are_counted_but_keep_the_medium_clean() -> None:
    report = tally(
        FileResult(b"a", CLEAN),
        FileResult(b"link", FileOutcome.SKIPPED, detail="symbolic link, not followed"),
        FileResult(b"fifo", FileOutcome.SKIPPED, detail="special file, not a regular file"),
    ).report(1, 0)
    assert report.verdict is ScanVerdict.CLEAN
    assert report.reason == "clean: 1 file scanned, 2 links or special files skipped"
    assert [r.path for r in report.skipped] == [b"fifo", b"link"]  # sorted
    assert report.files_total == 1


def test_one_infected_file_names_it() -> None:
    report = tally(
        FileResult(b"docs/x.txt", FileOutcome.INFECTED, EICAR_SIG), FileResult(b"y", CLEAN)
    ).report(1, 0)
    assert report.verdict is ScanVerdict.INFECTED
    assert report.reason == f"infected: EICAR test file found in 'docs/x.txt' ({EICAR_SIG})"
    assert report.files_scanned == 2


def test_several_infected_files_count_them_and_name_the_first_by_path() -> None:
    report = tally(
        FileResult(b"z/last", FileOutcome.INFECTED, "Win.Trojan.Agent-1"),
        FileResult(b"a/first", FileOutcome.INFECTED, "Win.Trojan.Agent-2"),
        FileResult(b"big.iso", FileOutcome.LIMITS_EXCEEDED, "Heuristics.Limits.Exceeded.Max"),
    ).report(1, 0)
    assert report.verdict is ScanVerdict.INFECTED  # infected wins over any problem
    assert report.reason == (
        "infected: 2 files infected; a virus found in 'a/first' (Win.Trojan.Agent-2)"
    )
    assert [r.path for r in report.infected] == [b"a/first", b"z/last"]
    assert len(report.problems) == 1


def test_an_infected_name_is_escaped_in_the_sentence() -> None:
    report = tally(FileResult(b"a\nb\xff", FileOutcome.INFECTED, EICAR_SIG)).report(1, 0)
    assert "'a\\x0ab\\xff'" in report.reason
    assert "\n" not in report.reason


def test_limits_exceeded_is_not_clean() -> None:
    report = tally(
        FileResult(b"big", FileOutcome.LIMITS_EXCEEDED, "Heuristics.Limits.Exceeded.MaxFileSize"),
        FileResult(b"ok", CLEAN),
    ).report(1, 0)
    assert report.verdict is ScanVerdict.NOT_SCANNED
    assert report.reason == "not scanned: 1 file is too big to scan (limits exceeded)"


def test_every_kind_of_problem_is_in_the_one_sentence() -> None:
    report = tally(
        FileResult(b"a", FileOutcome.LIMITS_EXCEEDED, "Heuristics.Limits.Exceeded.MaxFileSize"),
        FileResult(b"b", FileOutcome.LIMITS_EXCEEDED, "Heuristics.Limits.Exceeded.MaxScanSize"),
        FileResult(b"c", FileOutcome.UNREADABLE, detail="Input/output error"),
        FileResult(b"d", FileOutcome.CHANGED),
        FileResult(b"e", FileOutcome.ERROR, detail="Can't allocate memory"),
        FileResult(b"deep", FileOutcome.LIMITS_EXCEEDED, detail="nested too deeply"),
    ).report(1, 0)
    assert report.verdict is ScanVerdict.NOT_SCANNED
    assert report.reason == (
        "not scanned: 2 files are too big to scan (limits exceeded), 1 file could not be read, "
        "1 file kept changing while it was scanned, 1 file could not be scanned (scanner error), "
        "1 folder is nested too deeply to scan"
    )
    assert len(report.problems) == 6


def test_a_scan_that_stopped_is_not_scanned_unless_already_infected() -> None:
    stopped = "cannot scan right now: the virus scanner is not running"
    report = tally(FileResult(b"a", CLEAN)).report(1, 0, stopped=stopped)
    assert (report.verdict, report.reason) == (ScanVerdict.NOT_SCANNED, stopped)
    infected = tally(FileResult(b"x", FileOutcome.INFECTED, EICAR_SIG)).report(1, 0, stopped)
    assert infected.verdict is ScanVerdict.INFECTED
    assert infected.reason.endswith(f"(the scan did not finish: {stopped})")


def test_cache_hits_are_counted() -> None:
    t = Tally(files_total=3)
    t.add(FileResult(b"a", CLEAN), regular_file=True, cached=True)
    t.add(FileResult(b"b", CLEAN), regular_file=True, cached=True)
    t.add(FileResult(b"c", CLEAN), regular_file=True)
    report = t.report(1, 0)
    assert (report.files_scanned, report.from_cache) == (3, 2)


def test_lists_are_capped_but_counts_are_not() -> None:
    links = [FileResult(b"l%d" % i, FileOutcome.SKIPPED) for i in range(MAX_LISTED + 5)]
    report = tally(*links).report(1, 0)
    assert len(report.skipped) == MAX_LISTED
    assert report.omitted == 5
    assert f"{MAX_LISTED + 5:,} links or special files skipped" in report.reason


def test_json_shape() -> None:
    report = tally(
        FileResult(b"docs/x\xff.txt", FileOutcome.INFECTED, EICAR_SIG),
        FileResult(b"big", FileOutcome.LIMITS_EXCEEDED, "Heuristics.Limits.Exceeded.Max", "big"),
        FileResult(b"ok", CLEAN),
    ).report(42, 1.23456)
    data = report.to_json()
    assert json.loads(json.dumps(data)) == data  # plain JSON, no bytes
    assert data["verdict"] == "infected"
    assert data["infected"] == [{"path": "docs/x\\xff.txt", "signature": EICAR_SIG}]
    assert data["problems"] == [
        {
            "path": "big",
            "outcome": "limits-exceeded",
            "signature": "Heuristics.Limits.Exceeded.Max",
            "detail": "big",
        }
    ]
    assert (data["files_scanned"], data["files_total"], data["from_cache"]) == (2, 3, 0)
    assert (data["db_version"], data["seconds"]) == (42, 1.235)
    assert data["reason"] == report.reason
