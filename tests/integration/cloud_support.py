"""Helpers for the cloud-sync tests: staff homes, provider markers, and a folder's fingerprint
(every file's bytes, mode and owner) to prove nothing in it changed."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from guardd.ipc.protocol import Op
from sim.daemon import GuarddProcess, wait_for

STAFF = 65534  # nobody: an unprivileged member of staff who can reach the socket
OTHER = 65533
LOCKED = (0o000, 0, 0)  # (mode, uid, gid) of a blocked folder


def make_home(root: Path, name: str = "staff", uid: int = STAFF) -> Path:
    """A home folder owned by `uid` under a watch root."""
    home = root / name
    home.mkdir(parents=True, exist_ok=True)
    os.chown(home, uid, uid)
    home.chmod(0o755)
    return home


def make_tree(folder: Path, uid: int = STAFF, markers: tuple[str, ...] = ()) -> None:
    """A folder with some documents (and a sub-folder), owned by `uid`, plus markers."""
    (folder / "Reports").mkdir(parents=True, exist_ok=True)
    files = {
        "Budget 2026.xlsx": b"\x50\x4b\x03\x04 budget",
        "Reports/Year 9.docx": os.urandom(3000),
        "notes.txt": b"hello\n",
    }
    for name, data in files.items():
        (folder / name).write_bytes(data)
    for marker in markers:
        (folder / marker).write_bytes(b"")
    for path in [folder, *folder.rglob("*")]:
        os.chown(path, uid, uid)


def fingerprint(folder: Path) -> dict[str, Any]:
    """Every entry under `folder` (not the folder itself): type, mode, owner and content hash."""
    result: dict[str, Any] = {}
    for path in sorted(folder.rglob("*")):
        st = path.lstat()
        digest = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else ""
        result[str(path.relative_to(folder))] = (st.st_mode, st.st_uid, st.st_gid, digest)
    return result


def folder_state(path: Path) -> tuple[int, int, int]:
    """(mode, uid, gid) of a folder itself."""
    st = path.lstat()
    return st.st_mode & 0o7777, st.st_uid, st.st_gid


def cloud(daemon: GuarddProcess) -> dict[str, dict[str, Any]]:
    """Every folder the daemon lists (as IT), by path."""
    listed = daemon.client.call(Op.CLOUD, {"all": True})
    assert isinstance(listed, list)
    return {str(f["path"]): f for f in listed}


def wait_state(
    daemon: GuarddProcess, path: Path, state: str, timeout: float = 10.0
) -> dict[str, Any]:
    """Wait until the daemon lists `path` in `state`; return its listing."""
    wait_for(
        lambda: cloud(daemon).get(str(path), {}).get("state") == state,
        timeout,
        lambda: (
            f"{path} never {state}: {json.dumps(cloud(daemon), indent=1)}\n"
            f"guardd's log ends:\n{daemon.log.read_text(errors='replace')[-3000:]}"
        ),
    )
    return cloud(daemon)[str(path)]
