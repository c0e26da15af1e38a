"""The folder lock: record, block, restore exactly (owner, mode with set-id bits, ACLs)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from guardd.cloud import lock

STAFF = 65534


def getfacl(path: Path) -> str:
    return subprocess.run(
        ["getfacl", "-p", "-n", str(path)], capture_output=True, text=True, check=True
    ).stdout


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    path = tmp_path / "Dropbox"
    path.mkdir()
    (path / "doc.txt").write_text("keep me")
    os.chown(path, STAFF, STAFF)
    path.chmod(0o2770)
    return path


def test_block_then_restore_gives_back_exactly_what_was_there(folder: Path) -> None:
    if shutil.which("setfacl") is None:
        pytest.skip("setfacl is installed by `make deps`")
    subprocess.run(["setfacl", "-m", "u:65533:rwx,d:u:65533:rx", str(folder)], check=True)
    acl_before, st_before = getfacl(folder), folder.stat()
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        recorded = lock.record(fd)
        assert lock.Recorded.from_json(recorded.to_json()) == recorded
        lock.lock(fd)
        assert lock.is_locked(fd)
        st = folder.stat()
        assert (st.st_mode & 0o7777, st.st_uid, st.st_gid) == (0, 0, 0)
        assert "65533" not in getfacl(folder)
        lock.restore(fd, recorded)
    finally:
        os.close(fd)
    st = folder.stat()
    assert (st.st_mode, st.st_uid, st.st_gid) == (st_before.st_mode, STAFF, STAFF)
    assert getfacl(folder) == acl_before
    assert (folder / "doc.txt").read_text() == "keep me"


def test_restore_refuses_another_folder(folder: Path, tmp_path: Path) -> None:
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    recorded = lock.record(fd)
    os.close(fd)
    other = tmp_path / "other"
    other.mkdir()
    fd = os.open(other, os.O_RDONLY | os.O_DIRECTORY)
    try:
        with pytest.raises(OSError, match="not the folder guardd blocked"):
            lock.restore(fd, recorded)
    finally:
        os.close(fd)
    assert other.stat().st_uid == 0  # untouched


def test_a_blocked_folder_cannot_be_opened_or_given_back_by_its_owner(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        lock.lock(fd)
    finally:
        os.close(fd)
    tries = [
        ["ls", str(folder)],
        ["touch", str(folder / "new")],
        ["chmod", "755", str(folder)],
        ["cat", str(folder / "doc.txt")],
    ]
    for command in tries:
        done = subprocess.run(
            ["setpriv", f"--reuid={STAFF}", f"--regid={STAFF}", "--clear-groups", *command],
            capture_output=True,
            check=False,
        )
        assert done.returncode != 0, command
    assert not (folder / "new").exists()
