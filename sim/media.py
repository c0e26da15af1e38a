"""Real filesystems for the scanning tests, demo and bench: loop-mounted images.

A loop device stands in for the dm-crypt mapping an unlocked LUKS stick would get (there is
no device-mapper here): the filesystem, its mount and the BLKROSET hold are all real.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path


def real_env() -> dict[str, str]:
    """The environment for real tools: without umockdev's preload and testbed (a process that
    made a testbed has UMOCKDEV_DIR in its C environment, which children would inherit)."""
    return {k: v for k, v in os.environ.items() if k not in ("LD_PRELOAD", "UMOCKDEV_DIR")}


def _run(*args: str) -> str:
    return subprocess.run(
        args, check=True, capture_output=True, text=True, timeout=120, env=real_env()
    ).stdout


@dataclass
class LoopMedium:
    """An ext4 image made from a folder, attached to a loop device, mounted where asked."""

    image: Path
    devnode: str = ""
    mountpoint: Path | None = None
    _staging: list[Path] = field(default_factory=list)

    @classmethod
    def create(cls, image: Path, files: dict[str, bytes], size_mb: int = 64) -> LoopMedium:
        """Build an ext4 image holding `files` (relative path -> bytes) and attach it."""
        staging = Path(tempfile.mkdtemp(prefix="guardd-medium-"))
        try:
            for rel, data in files.items():
                path = staging / rel
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(data)
            image.unlink(missing_ok=True)
            _run("truncate", "-s", f"{size_mb}M", str(image))
            _run("mkfs.ext4", "-q", "-F", "-d", str(staging), str(image))
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        medium = cls(image)
        medium.devnode = _run("losetup", "-f", "--show", str(image)).strip()
        return medium

    @property
    def numbers(self) -> tuple[int, int]:
        """(major, minor) of the loop device."""
        rdev = os.stat(self.devnode).st_rdev
        return os.major(rdev), os.minor(rdev)

    def mount(self, where: Path) -> Path:
        """Mount it (as the desktop would when staff open the drive)."""
        where.mkdir(parents=True, exist_ok=True)
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

    def close(self) -> None:
        """Unmount, make writable again and detach the loop device."""
        self.unmount()
        if self.devnode:
            subprocess.run(
                ["blockdev", "--setrw", self.devnode], check=False, timeout=60, env=real_env()
            )
            subprocess.run(["losetup", "-d", self.devnode], check=False, timeout=60, env=real_env())
            self.devnode = ""
