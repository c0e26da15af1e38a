"""Scanning real filesystems as sticks carry them: ext4 on a loop device, FAT and exFAT
through FUSE (this kernel has no vfat), and a filesystem mounted inside the medium."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from scanning_fixtures import (  # noqa: F401 - fixtures, known to pytest by name
    Mounted,
    clamd_fixture,
    run,
    scanner_for,
    short_dir,
    skip_unless_usable,
    write_files,
)

from guardd.scanning import FileOutcome, ScanVerdict
from sim.clamd import EICAR, ClamdProcess

FILES = {
    b"Reports/Term 1/summary.txt": b"All pupils made progress.\n" * 50,
    b"Reports/Term 1/grades.csv": b"name,grade\n" + b"pupil,A\n" * 200,
    b"slides.odp": b"PK\x03\x04" + os.urandom(4096),
    b"README.TXT": b"school stick\n",
}
EICAR_AT = b"Reports/Term 1/attachment.com"


@pytest.fixture
def workdir() -> Iterator[Path]:
    path = short_dir("guardd-media-")
    yield path
    if not any(os.path.ismount(p) for p in path.iterdir()):  # never delete through a mount
        shutil.rmtree(path)


@pytest.mark.parametrize("fs", ["ext4", "vfat", "exfat"])
def test_eicar_found_and_clean_media_clean(clamd: ClamdProcess, workdir: Path, fs: str) -> None:
    skip_unless_usable(fs)
    medium = Mounted(fs, workdir)
    try:
        write_files(medium.path, {**FILES, EICAR_AT: EICAR})
        os.sync()
        scanner = scanner_for(clamd)
        infected = scanner.scan_tree(medium.path)
        assert infected.verdict is ScanVerdict.INFECTED, infected.reason
        assert [r.path for r in infected.infected] == [EICAR_AT]
        assert infected.files_scanned == len(FILES) + 1
        (medium.path / os.fsdecode(EICAR_AT)).unlink()
        clean = scanner.scan_tree(medium.path)
        assert clean.verdict is ScanVerdict.CLEAN, clean.reason
        assert clean.files_scanned == len(FILES)
        assert clean.problems == ()
    finally:
        medium.close()


def test_a_filesystem_mounted_inside_is_not_entered(
    clamd: ClamdProcess, workdir: Path, tmp_path: Path
) -> None:
    skip_unless_usable("ext4")
    root = write_files(tmp_path / "medium", FILES)
    inner = Mounted("ext4", workdir)
    try:
        write_files(inner.path, {b"eicar.com": EICAR})
        os.sync()
        (root / "mnt").mkdir()
        run("mount", "--bind", str(inner.path), str(root / "mnt"))
        try:
            assert (root / "mnt" / "eicar.com").exists()
            report = scanner_for(clamd).scan_tree(root)
        finally:
            run("umount", str(root / "mnt"))
        assert report.verdict is ScanVerdict.CLEAN
        assert [(r.path, r.outcome) for r in report.skipped] == [(b"mnt", FileOutcome.SKIPPED)]
        assert "another filesystem" in report.skipped[0].detail
    finally:
        inner.close()
