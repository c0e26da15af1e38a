"""Opening under a root by descriptor: symlinks and '..' never lead outside."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from guardd.cloud.beneath import BeneathError, is_dir, open_dir, open_root, parts_of, read_file


@pytest.fixture
def root(tmp_path: Path) -> Path:
    (tmp_path / "home" / "alice" / "Dropbox").mkdir(parents=True)
    (tmp_path / "home" / "alice" / "note.txt").write_text("hi")
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "secret").write_text("secret")
    return tmp_path


@pytest.mark.parametrize("bad", ["..", "a/../b", "/etc", "a//b", "./a", "a/\0"])
def test_paths_that_could_climb_out_are_refused(bad: str) -> None:
    with pytest.raises(BeneathError):
        parts_of(bad)


def test_a_symlinked_folder_is_never_followed(root: Path) -> None:
    (root / "home" / "alice" / "Link").symlink_to(root / "outside")
    fd = open_root(str(root / "home"))
    try:
        with pytest.raises(OSError, match=r"symbolic links|Not a directory") as refused:
            open_dir(fd, "alice/Link")
        assert refused.value.errno in (errno.ELOOP, errno.ENOTDIR)  # refused, not followed
        assert not is_dir(fd, "alice/Link")
        assert is_dir(fd, "alice/Dropbox")
        assert read_file(fd, "alice/Link/secret", 100) is None
        (root / "home" / "alice" / "file-link").symlink_to(root / "outside" / "secret")
        assert read_file(fd, "alice/file-link", 100) is None
        assert read_file(fd, "alice/note.txt", 100) == "hi"
    finally:
        os.close(fd)


def test_reads_are_bounded_and_never_block_on_a_fifo(root: Path) -> None:
    os.mkfifo(root / "home" / "alice" / "pipe")
    (root / "home" / "alice" / "big").write_bytes(b"x" * 10_000)
    fd = open_root(str(root / "home"))
    try:
        assert read_file(fd, "alice/pipe", 100) is None
        assert read_file(fd, "alice/big", 100) == "x" * 100
    finally:
        os.close(fd)
