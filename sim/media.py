"""Real filesystems for the scanning tests, demo and bench: loop-mounted images.

A loop device stands in for the dm-crypt mapping an unlocked LUKS stick would get (there is
no device-mapper here): the filesystem, its mount and the BLKROSET hold are all real.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from sim.env import real_env


def _run(*args: str) -> str:
    return subprocess.run(
        args, check=True, capture_output=True, text=True, timeout=120, env=real_env()
    ).stdout


@dataclass
class LoopMedium:
    """An ext4 image made from a folder, attached to a loop device, mounted where asked."""

    image: Path
    fs: str = "ext4"
    devnode: str = ""
    mountpoint: Path | None = None
    _staging: list[Path] = field(default_factory=list)

    @classmethod
    def create(
        cls,
        image: Path,
        files: dict[str | bytes, bytes],
        size_mb: int = 64,
        fs: str = "ext4",
        links: dict[str, str] | None = None,
    ) -> LoopMedium:
        """Build an ext4 or exFAT image holding `files` (relative path -> bytes; a bytes path
        may be any name ext4 allows) and symbolic `links` (name -> target), and attach it."""
        staging = Path(tempfile.mkdtemp(prefix="guardd-medium-"))
        try:
            _stage(staging, files, links or {})
            image.unlink(missing_ok=True)
            _run("truncate", "-s", f"{size_mb}M", str(image))
            if fs == "ext4":
                _run("mkfs.ext4", "-q", "-F", "-d", str(staging), str(image))
            medium = cls(image, fs)
            medium.devnode = _run("losetup", "-f", "--show", str(image)).strip()
            # A loop device keeps the read-only flag of its last use (set by a daemon that
            # held it): start writable, as a freshly plugged stick does.
            _run("blockdev", "--setrw", medium.devnode)
            if fs == "exfat":
                medium.fill_exfat(staging)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return medium

    def fill_exfat(self, staging: Path) -> None:
        """Format the loop device exFAT and copy the staged files in through exfat-fuse."""
        _run("mkfs.exfat", "-L", "STICK", self.devnode)
        where = Path(tempfile.mkdtemp(prefix="guardd-exfat-"))
        try:
            _run("mount.exfat-fuse", self.devnode, str(where))
            _run("cp", "-a", f"{staging}/.", str(where))
            _run("umount", str(where))
            # umount returns before exfat-fuse has written its last metadata and exited; a
            # device made read-only in that window is left half-closed (reads then fail).
            wait_fuse_gone(self.devnode)
        finally:
            where.rmdir()

    @property
    def numbers(self) -> tuple[int, int]:
        """(major, minor) of the loop device."""
        rdev = os.stat(self.devnode).st_rdev
        return os.major(rdev), os.minor(rdev)

    def mount(self, where: Path) -> Path:
        """Mount it (as the desktop would when staff open the drive)."""
        where.mkdir(parents=True, exist_ok=True)
        if self.fs == "exfat":
            _run("mount.exfat-fuse", "-o", "nosuid,nodev", self.devnode, str(where))
        else:
            _run("mount", "-o", "nosuid,nodev", self.devnode, str(where))
        self.mountpoint = where
        return where

    def unmount(self) -> None:
        """Unmount if mounted."""
        if self.mountpoint is not None:
            subprocess.run(
                ["umount", "-l", str(self.mountpoint)], check=False, timeout=60, env=real_env()
            )
            self.mountpoint = None
            if self.fs == "exfat":
                wait_fuse_gone(self.devnode)

    def close(self) -> None:
        """Unmount, make writable again and detach the loop device."""
        self.unmount()
        if self.devnode:
            subprocess.run(
                ["blockdev", "--setrw", self.devnode], check=False, timeout=60, env=real_env()
            )
            subprocess.run(["losetup", "-d", self.devnode], check=False, timeout=60, env=real_env())
            self.devnode = ""


def _stage(staging: Path, files: dict[str | bytes, bytes], links: dict[str, str]) -> None:
    for rel, data in files.items():
        path = os.path.join(os.fsencode(staging), os.fsencode(rel))
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(data)
    for name, target in links.items():
        os.symlink(target, staging / name)


def wait_fuse_gone(devnode: str, timeout: float = 10.0) -> None:
    """Wait until no FUSE process serves `devnode` any more."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and _fuse_serving(devnode):
        time.sleep(0.02)


def _fuse_serving(devnode: str) -> bool:
    wanted = devnode.encode()
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                args = f.read().split(b"\0")
        except OSError:
            continue
        if any(b"fuse" in a for a in args[:1]) and wanted in args:
            return True
    return False
