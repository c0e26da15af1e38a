"""Shared by the test_scan_* integration tests: a real clamd, trees of files, real filesystems.

Import the fixtures under their function names (`from scanning_fixtures import clamd_fixture`);
pytest knows them by their fixture names (`clamd`, `fresh_clamd`). Nothing here uses the
umockdev fixtures of conftest.py; every command run here gets the environment without
umockdev's preload, so clamd, mount and mkfs see the real machine.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from guardd.scanning import Clamd, ScanCache, Scanner
from sim.clamd import ClamdProcess
from sim.env import real_env


def run(*args: str) -> str:
    """Run a command, fail the test with its output if it fails."""
    done = subprocess.run(
        args, check=False, capture_output=True, text=True, timeout=120, env=real_env()
    )
    if done.returncode != 0:
        pytest.fail(f"{' '.join(args)} exited {done.returncode}: {done.stderr or done.stdout}")
    return done.stdout


def short_dir(prefix: str) -> Path:
    """A new folder with a short path (a unix socket path must stay under 108 bytes)."""
    return Path(tempfile.mkdtemp(prefix=prefix))


@pytest.fixture(scope="session", name="clamd")
def clamd_fixture() -> Iterator[ClamdProcess]:
    """One clamd for every test that neither kills it nor changes its database."""
    yield from _running_clamd()


@pytest.fixture(name="fresh_clamd")
def fresh_clamd_fixture() -> Iterator[ClamdProcess]:
    """A clamd of the test's own, to kill or to give a new database."""
    yield from _running_clamd()


def _running_clamd() -> Iterator[ClamdProcess]:
    workdir = short_dir("guardd-clamd-")
    process = ClamdProcess(workdir)
    process.start()
    yield process
    process.stop()
    shutil.rmtree(workdir, ignore_errors=True)


def scanner_for(
    clamd: ClamdProcess,
    cache: ScanCache | None = None,
    workers: int = 4,
    accept_limits_exceeded: bool = False,
) -> Scanner:
    """A Scanner talking to this clamd (no cache unless given)."""
    return Scanner(Clamd(str(clamd.socket)), cache, workers, accept_limits_exceeded)


def write_files(root: Path, files: dict[bytes, bytes]) -> Path:
    """Make `files` (relative raw path -> content) under root."""
    for rel, data in files.items():
        path = os.path.join(os.fsencode(root), rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(data)
    return root


class Mounted:
    """A filesystem image mounted at `path` (ext4 by loop, vfat and exFAT through FUSE)."""

    def __init__(self, fs: str, workdir: Path, size_mb: int = 32) -> None:
        self.fs = fs
        self.image = workdir / f"{fs}.img"
        self.path = workdir / f"{fs}-mnt"
        self.loop = ""
        self.path.mkdir(parents=True)
        run("truncate", "-s", f"{size_mb}M", str(self.image))
        if fs == "ext4":
            run("mkfs.ext4", "-q", "-F", str(self.image))
            run("mount", "-o", "loop,nosuid,nodev", str(self.image), str(self.path))
        elif fs == "vfat":
            run("mkfs.vfat", str(self.image))
            run("fusefat", "-o", "rw+", str(self.image), str(self.path))
        else:
            run("mkfs.exfat", str(self.image))
            self.loop = run("losetup", "-f", "--show", str(self.image)).strip()
            run("blockdev", "--setrw", self.loop)  # a loop device keeps its last read-only flag
            run("mount.exfat-fuse", self.loop, str(self.path))

    def close(self) -> None:
        """Unmount and detach."""
        command = ["umount"] if self.fs == "ext4" else ["fusermount", "-u"]
        done = subprocess.run(
            [*command, str(self.path)], check=False, capture_output=True, timeout=60, env=real_env()
        )
        if done.returncode != 0:
            subprocess.run(
                ["umount", "-l", str(self.path)], check=False, timeout=60, env=real_env()
            )
        if self.loop:
            subprocess.run(["losetup", "-d", self.loop], check=False, timeout=60, env=real_env())


MKFS = {"ext4": "mkfs.ext4", "vfat": "mkfs.vfat", "exfat": "mkfs.exfat"}
PACKAGES = {"ext4": "e2fsprogs", "vfat": "dosfstools + fusefat", "exfat": "exfatprogs + exfat-fuse"}
DRIVERS = {"ext4": "mount", "vfat": "fusefat", "exfat": "mount.exfat-fuse"}


def skip_unless_usable(fs: str) -> None:
    """Skip (saying what to install) when this machine cannot make or mount `fs`."""
    for tool in (MKFS[fs], DRIVERS[fs]):
        if shutil.which(tool) is None and not Path("/usr/sbin", tool).exists():
            pytest.skip(f"{tool} is not installed (Debian: {PACKAGES[fs]}); {fs} not tested")
    if fs != "ext4" and not Path("/dev/fuse").exists():
        pytest.skip(f"no /dev/fuse: {fs} (a FUSE filesystem here) not tested")
    if os.geteuid() != 0:
        pytest.skip(f"mounting {fs} needs root")
