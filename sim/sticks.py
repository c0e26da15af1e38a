"""Disk images for emulated USB sticks (QEMU usb-storage), made on the host.

LUKS sticks are encrypted offline by cryptsetup itself (`reencrypt --encrypt` on an image
file needs no device-mapper), so the host can make them although only the guest can open
them.
"""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

from sim.env import real_env

STICK_MB = 48
LUKS_HEADER_MB = 16  # LUKS2's default header and keyslots area
KEY = b"guardd-e2e-stick-key"


def _run(*argv: str) -> None:
    subprocess.run(argv, check=True, capture_output=True, env=real_env(), timeout=120)


def blank(path: Path) -> Path:
    """A stick with nothing on it (unformatted)."""
    with path.open("wb") as f:
        f.truncate(STICK_MB << 20)
    return path


def ext4(path: Path, files: dict[str, bytes], size_mb: int = STICK_MB) -> Path:
    """A plain (unencrypted) ext4 stick holding `files`."""
    with tempfile.TemporaryDirectory(prefix="guardd-stick-") as staging:
        for name, data in files.items():
            target = Path(staging) / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
        path.unlink(missing_ok=True)
        _run("mke2fs", "-q", "-t", "ext4", "-L", "STICK", "-d", staging, str(path), f"{size_mb}M")
    return path


def luks(path: Path, files: dict[str, bytes], key_file: Path) -> Path:
    """A LUKS2 stick (key in `key_file`) holding an ext4 filesystem with `files`."""
    key_file.write_bytes(KEY)
    ext4(path, files, STICK_MB - LUKS_HEADER_MB)
    with path.open("r+b") as f:
        f.truncate(STICK_MB << 20)
    _run(
        "cryptsetup",
        "reencrypt",
        "--encrypt",
        "--type",
        "luks2",
        "--pbkdf",
        "pbkdf2",
        "--pbkdf-force-iterations",
        "1000",
        "--key-file",
        str(key_file),
        "--reduce-device-size",
        f"{LUKS_HEADER_MB}M",
        "--batch-mode",
        str(path),
    )
    return path
