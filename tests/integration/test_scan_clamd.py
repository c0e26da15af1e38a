"""The scanner against a real clamd (sim.clamd) on real files: what it finds, what it refuses
to follow, clamd dying mid-scan, and the cache across database versions."""

from __future__ import annotations

import io
import os
import shutil
import time
import zipfile
from pathlib import Path

import pytest
from scanning_fixtures import (  # noqa: F401 - fixtures, known to pytest by name
    clamd_fixture,
    fresh_clamd_fixture,
    scanner_for,
    short_dir,
    write_files,
)

from guardd.scanning import Clamd, FileOutcome, Progress, ScanCache, ScanVerdict
from guardd.scanning.scanner import NOT_RUNNING
from sim.clamd import EICAR, EICAR_SIGNATURE, MARKER, MARKER_SIGNATURE, ClamdProcess

CLEAN = {
    b"letters/parents.txt": b"Dear parents,\n" * 40,
    b"maths/worksheet.csv": b"1,2,3\n" * 100,
    b"empty.txt": b"",
}


def zipped(name: str, data: bytes) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(name, data)
    return buffer.getvalue()


def test_clamd_answers_and_reports_its_database(clamd: ClamdProcess) -> None:
    client = Clamd(str(clamd.socket))
    assert client.ping()
    version = client.version()
    assert version.engine.startswith("ClamAV ")
    assert version.db_version == clamd.db_version  # the sim's versioned daily.cud


def test_a_clean_tree(clamd: ClamdProcess, tmp_path: Path) -> None:
    report = scanner_for(clamd).scan_tree(write_files(tmp_path, CLEAN))
    assert report.verdict is ScanVerdict.CLEAN
    assert (report.files_total, report.files_scanned) == (3, 3)
    assert report.reason == "clean: 3 files scanned"


@pytest.mark.parametrize(
    "where",
    [b"eicar.com", b"/".join(b"level%d" % i for i in range(10)) + b"/eicar.txt"],
    ids=["at-the-root", "ten-folders-deep"],
)
def test_eicar_is_found(clamd: ClamdProcess, tmp_path: Path, where: bytes) -> None:
    report = scanner_for(clamd).scan_tree(write_files(tmp_path, {**CLEAN, where: EICAR}))
    assert report.verdict is ScanVerdict.INFECTED
    [found] = report.infected
    assert found.path == where
    assert found.signature.startswith(EICAR_SIGNATURE)
    assert report.reason == (
        f"infected: EICAR test file found in '{os.fsdecode(where)}' ({found.signature})"
    )


def test_eicar_in_a_zip_in_a_zip(clamd: ClamdProcess, tmp_path: Path) -> None:
    nested = zipped("inner.zip", zipped("eicar.com", EICAR))
    report = scanner_for(clamd).scan_tree(write_files(tmp_path, {b"homework.zip": nested}))
    assert report.verdict is ScanVerdict.INFECTED
    assert [r.path for r in report.infected] == [b"homework.zip"]


def test_the_test_marker_signature(clamd: ClamdProcess, tmp_path: Path) -> None:
    files = {b"notes.bin": b"some text " + MARKER + b" more text"}
    report = scanner_for(clamd).scan_tree(write_files(tmp_path, files))
    assert [r.signature.split(".UNOFFICIAL")[0] for r in report.infected] == [MARKER_SIGNATURE]
    assert report.reason.startswith("infected: a virus found in 'notes.bin'")


def test_a_file_over_max_file_size(clamd: ClamdProcess, tmp_path: Path) -> None:
    root = write_files(tmp_path, CLEAN)
    with (root / "video.mp4").open("wb") as f:
        f.truncate(11 << 20)  # past the sim's MaxFileSize 10M
    report = scanner_for(clamd).scan_tree(root)
    assert report.verdict is ScanVerdict.NOT_SCANNED
    assert report.retryable is False  # scanning again will not help: the file stays too big
    [big] = report.problems
    assert (big.path, big.outcome) == (b"video.mp4", FileOutcome.LIMITS_EXCEEDED)
    assert big.signature.startswith("Heuristics.Limits.Exceeded")
    assert report.reason == "not scanned: 1 file is too big to scan (limits exceeded)"
    lenient = scanner_for(clamd, accept_limits_exceeded=True).scan_tree(root)
    assert lenient.verdict is ScanVerdict.CLEAN


def test_three_thousand_small_files(clamd: ClamdProcess, tmp_path: Path) -> None:
    files = {b"class%d/pupil%04d.txt" % (i % 30, i): b"work of pupil %d\n" % i for i in range(3000)}
    root = write_files(tmp_path, files)
    seen: list[Progress] = []
    started = time.monotonic()
    report = scanner_for(clamd).scan_tree(root, progress=seen.append)
    elapsed = time.monotonic() - started
    assert report.verdict is ScanVerdict.CLEAN
    assert (report.files_total, report.files_scanned) == (3000, 3000)
    assert seen[0] == Progress(0, 3000)
    assert seen[-1] == Progress(3000, 3000)
    assert len(seen) <= elapsed / 0.1 + 3
    print(f"\n3,000 files in {elapsed:.2f} s: {3000 / elapsed:,.0f} files/s")


def test_odd_names(clamd: ClamdProcess, tmp_path: Path) -> None:
    odd = {
        b"with spaces/a file.txt": b"fine",
        b"new\nline.txt": b"fine",
        b"bad\xff\xfe.txt": b"fine",
        b"caf\xc3\xa9/\x1b[31mred\xff\n.com": EICAR,
    }
    report = scanner_for(clamd).scan_tree(write_files(tmp_path, odd))
    assert report.files_scanned == 4
    [found] = report.infected
    assert found.path == b"caf\xc3\xa9/\x1b[31mred\xff\n.com"
    assert found.display_path == "café/\\x1b[31mred\\xff\\x0a.com"
    assert "'café/\\x1b[31mred\\xff\\x0a.com'" in report.reason
    assert report.to_json()["infected"][0]["path"] == found.display_path


def test_links_out_of_the_medium_are_never_followed(clamd: ClamdProcess, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    write_files(outside, {b"virus.com": EICAR})
    root = write_files(tmp_path / "medium", CLEAN)
    os.symlink("/etc/shadow", root / "shadow")
    os.symlink(outside / "virus.com", root / "innocent.txt")
    os.symlink(outside, root / "folder")
    report = scanner_for(clamd).scan_tree(root)
    assert report.verdict is ScanVerdict.CLEAN  # the EICAR behind the links was never scanned
    assert {r.path: r.detail for r in report.skipped} == dict.fromkeys(
        (b"folder", b"innocent.txt", b"shadow"), "symbolic link, not followed"
    )
    assert report.files_scanned == 3


def test_a_file_replaced_during_the_scan(clamd: ClamdProcess, tmp_path: Path) -> None:
    root = write_files(tmp_path, {b"doc.txt": b"harmless"})
    scanner = scanner_for(clamd, workers=1)
    swaps = [EICAR]

    def swap(path: bytes) -> None:  # after clamd judged the old content, before the check
        if swaps:
            (root / "doc.new").write_bytes(swaps.pop())
            (root / "doc.new").rename(root / "doc.txt")

    scanner.on_scanned = swap
    report = scanner.scan_tree(root)
    assert report.verdict is ScanVerdict.INFECTED  # the replacement was scanned too
    assert [r.path for r in report.infected] == [b"doc.txt"]


def test_clamd_killed_mid_scan_then_back(fresh_clamd: ClamdProcess, tmp_path: Path) -> None:
    root = write_files(tmp_path, {b"f%04d.txt" % i: b"text %d\n" % i for i in range(2000)})
    scanner = scanner_for(fresh_clamd)

    def kill_after_100(progress: Progress) -> None:
        if progress.files_done >= 100 and fresh_clamd.running:
            fresh_clamd.kill()

    report = scanner.scan_tree(root, progress=kill_after_100)
    assert not fresh_clamd.running
    assert report.verdict is ScanVerdict.NOT_SCANNED
    assert report.reason == NOT_RUNNING
    assert report.retryable is True  # clamd unreachable: the media gate tries again
    assert 100 <= report.files_scanned < 2000
    fresh_clamd.start()
    again = scanner.scan_tree(root)
    assert again.verdict is ScanVerdict.CLEAN
    assert again.files_scanned == 2000


def test_the_cache_and_a_new_database(fresh_clamd: ClamdProcess, tmp_path: Path) -> None:
    root = write_files(tmp_path / "m", {b"f%03d.txt" % i: b"essay %d\n" % i for i in range(300)})
    cache = ScanCache(tmp_path / "state" / "scancache.db")
    scanner = scanner_for(fresh_clamd, cache=cache)
    first = scanner.scan_tree(root)
    assert (first.verdict, first.from_cache, first.files_scanned) == (ScanVerdict.CLEAN, 0, 300)
    second = scanner.scan_tree(root)
    assert (second.verdict, second.from_cache) == (ScanVerdict.CLEAN, 300)
    print(f"\nfirst scan {first.seconds:.3f} s, from the cache {second.seconds:.3f} s")
    fresh_clamd.add_signature("Guardd.Test.Essay42", b"essay 42\n".hex())
    fresh_clamd.reload()
    third = scanner.scan_tree(root)
    assert third.db_version == first.db_version + 1
    assert third.from_cache == 0  # a new database judges everything again
    assert third.verdict is ScanVerdict.INFECTED
    assert [r.path for r in third.infected] == [b"f042.txt"]
    fourth = scanner.scan_tree(root)
    assert (fourth.from_cache, len(fourth.infected)) == (299, 1)  # infected is never cached
    cache.close()


def test_instream_fallback_against_a_real_clamd(tmp_path: Path) -> None:
    workdir = short_dir("guardd-clamd-")
    process = ClamdProcess(workdir)
    with process.config.open("a") as conf:
        conf.write("StreamMaxLength 1M\n")
    process.start()
    try:
        client = Clamd(str(process.socket))
        client._fildes = False  # as if clamd had refused FILDES once
        answers = {}
        for name, data in (("eicar", EICAR), ("ok", b"hello"), ("big", b"x" * (3 << 20))):
            (tmp_path / name).write_bytes(data)
            fd = os.open(tmp_path / name, os.O_RDONLY)
            try:
                answers[name] = client.scan_fd(fd)
            finally:
                os.close(fd)
    finally:
        process.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    assert answers["eicar"][0] == "FOUND"
    assert answers["eicar"][1].startswith(EICAR_SIGNATURE)
    assert answers["ok"] == ("OK", "")
    assert answers["big"] == ("FOUND", "Heuristics.Limits.Exceeded.StreamMaxLength")
