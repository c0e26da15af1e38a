"""The walk of a medium: descriptors only, no symbolic link followed, odd names kept exact."""

from __future__ import annotations

import errno
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from guardd.scanning.result import FileOutcome, FileResult
from guardd.scanning.walker import (
    OTHER_FS,
    SPECIAL,
    SYMLINK,
    FoundFile,
    count_files,
    error_result,
    open_file,
    resolve,
    walk,
)


@pytest.fixture
def root_fd(tmp_path: Path) -> Iterator[int]:
    (tmp_path / "root").mkdir()
    fd = os.open(tmp_path / "root", os.O_RDONLY | os.O_DIRECTORY)
    yield fd
    os.close(fd)


def root_of(tmp_path: Path) -> Path:
    return tmp_path / "root"


def make(root: Path, *files: bytes) -> None:
    for rel in files:
        path = os.path.join(os.fsencode(root), rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(b"content of " + rel)


def entries(fd: int, **kwargs: Any) -> tuple[dict[bytes, FoundFile], dict[bytes, FileResult]]:
    found: dict[bytes, FoundFile] = {}
    results: dict[bytes, FileResult] = {}
    for entry in walk(fd, **kwargs):
        if isinstance(entry, FoundFile):
            # dir_fd is valid right now: prove it by reading the file through it
            with open(os.open(entry.name, os.O_RDONLY, dir_fd=entry.dir_fd), "rb") as f:
                assert f.read() == b"content of " + entry.path
            found[entry.path] = entry
        else:
            results[entry.path] = entry
    return found, results


def open_fds() -> set[str]:
    return set(os.listdir("/proc/self/fd"))


def test_every_regular_file_is_found_with_its_path(tmp_path: Path, root_fd: int) -> None:
    make(root_of(tmp_path), b"a.txt", b"docs/b.txt", b"docs/deeper/c.txt", b"d.txt")
    (root_of(tmp_path) / "empty-folder").mkdir()
    found, results = entries(root_fd)
    assert set(found) == {b"a.txt", b"docs/b.txt", b"docs/deeper/c.txt", b"d.txt"}
    assert results == {}
    assert count_files(root_fd) == 4


def test_odd_names_stay_exact_bytes(tmp_path: Path, root_fd: int) -> None:
    odd = [b"with space.txt", b"new\nline.txt", b"bad\xff\xfe.bin", b"dir \xe9\n/inner \x01.txt"]
    make(root_of(tmp_path), *odd)
    found, _ = entries(root_fd)
    assert set(found) == set(odd)


def test_a_symlink_is_skipped_and_never_opened(
    tmp_path: Path, root_fd: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    make(root_of(tmp_path), b"ok.txt")
    os.symlink("/etc/shadow", root_of(tmp_path) / "shadow")
    os.symlink("/etc", root_of(tmp_path) / "etc-dir")
    opened: list[object] = []
    real_open = os.open

    def spy(path: Any, flags: int, *args: Any, **kwargs: Any) -> int:
        opened.append(path)
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", spy)
    found, results = entries(root_fd)
    assert set(found) == {b"ok.txt"}
    assert results[b"shadow"] == FileResult(b"shadow", FileOutcome.SKIPPED, detail=SYMLINK)
    assert results[b"etc-dir"].detail == SYMLINK
    assert not {"shadow", b"shadow", "etc-dir", b"etc-dir"} & set(opened)


def test_special_files_are_skipped(tmp_path: Path, root_fd: int) -> None:
    os.mkfifo(root_of(tmp_path) / "fifo")
    os.mknod(root_of(tmp_path) / "null", 0o600 | 0o020000, os.makedev(1, 3))
    _, results = entries(root_fd)
    assert results[b"fifo"].detail == results[b"null"].detail == SPECIAL
    assert results[b"fifo"].outcome is FileOutcome.SKIPPED


def test_depth_limit_makes_a_problem_not_a_silent_skip(tmp_path: Path, root_fd: int) -> None:
    make(root_of(tmp_path), b"1/2/3/ok.txt", b"1/2/3/4/hidden.txt")
    found, results = entries(root_fd, max_depth=3)
    assert set(found) == {b"1/2/3/ok.txt"}
    assert results[b"1/2/3/4"].outcome is FileOutcome.LIMITS_EXCEEDED
    assert "more than 3 levels" in results[b"1/2/3/4"].detail


def test_the_default_depth_handles_a_very_deep_tree(tmp_path: Path, root_fd: int) -> None:
    deep = b"/".join([b"d"] * 300)
    fd = os.dup(root_fd)
    for _ in range(300):  # relative steps: the absolute path would be too long for mkdir
        os.mkdir(b"d", dir_fd=fd)
        child = os.open(b"d", os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
        os.close(fd)
        fd = child
    os.close(os.open(b"f", os.O_CREAT | os.O_WRONLY, dir_fd=fd))
    os.close(fd)
    before = open_fds()
    found: dict[bytes, FoundFile] = {}
    results: dict[bytes, FileResult] = {}
    for entry in walk(root_fd):
        if isinstance(entry, FoundFile):
            found[entry.path] = entry
        else:
            results[entry.path] = entry
    assert found == {}
    assert [r.outcome for r in results.values()] == [FileOutcome.LIMITS_EXCEEDED]
    assert next(iter(results)) == b"/".join([b"d"] * 257)
    assert deep.startswith(next(iter(results)))
    assert open_fds() == before


def test_descriptors_are_closed_after_a_full_or_broken_off_walk(
    tmp_path: Path, root_fd: int
) -> None:
    make(root_of(tmp_path), *(b"a/b/c/f%d" % i for i in range(20)))
    before = open_fds()
    assert count_files(root_fd) == 20
    assert open_fds() == before
    walking = walk(root_fd)
    next(walking)
    assert len(open_fds()) > len(before)  # the walk holds its folders while it runs
    walking.close()
    assert open_fds() == before


def test_the_walk_is_lazy(tmp_path: Path, root_fd: int) -> None:
    make(root_of(tmp_path), *(b"f%05d" % i for i in range(2000)))
    walking = walk(root_fd)
    first = next(walking)
    assert isinstance(first, FoundFile)
    make(root_of(tmp_path), b"zz-late")  # made after the walk started
    rest = [e.path for e in walking]
    assert len(rest) in (1999, 2000)  # scandir may or may not see it: no list taken up front


def test_an_unreadable_folder_is_a_problem(
    tmp_path: Path, root_fd: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Tests run as root, who can read anything: make the folder's open fail as EACCES would.
    make(root_of(tmp_path), b"ok.txt", b"secret/x.txt")
    real_open = os.open

    def refuse(path: Any, flags: int, *args: Any, **kwargs: Any) -> int:
        if path in (b"secret", "secret"):
            raise PermissionError(errno.EACCES, "Permission denied")
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", refuse)
    found, results = entries(root_fd)
    assert set(found) == {b"ok.txt"}
    assert results[b"secret"] == FileResult(
        b"secret", FileOutcome.UNREADABLE, detail="Permission denied"
    )


def test_another_filesystem_is_not_entered(
    tmp_path: Path, root_fd: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A real mount inside the medium is tested in test_scan_media.py; here st_dev is faked.
    make(root_of(tmp_path), b"ok.txt", b"mnt/x.txt")
    real_fstat = os.fstat
    mnt = os.stat(root_of(tmp_path) / "mnt")

    def other_dev(fd: int) -> os.stat_result:
        st = real_fstat(fd)
        if st.st_ino == mnt.st_ino:
            return os.stat_result((st.st_mode, st.st_ino, st.st_dev + 1, *tuple(st)[3:]))
        return st

    monkeypatch.setattr(os, "fstat", other_dev)
    found, results = entries(root_fd)
    assert set(found) == {b"ok.txt"}
    assert results[b"mnt"] == FileResult(b"mnt", FileOutcome.SKIPPED, detail=OTHER_FS)


@pytest.mark.parametrize(
    ("code", "outcome"),
    [
        (errno.ELOOP, FileOutcome.SKIPPED),
        (errno.ENOENT, FileOutcome.SKIPPED),
        (errno.ENXIO, FileOutcome.SKIPPED),
        (errno.EACCES, FileOutcome.UNREADABLE),
        (errno.EIO, FileOutcome.UNREADABLE),
    ],
)
def test_error_results(code: int, outcome: FileOutcome) -> None:
    assert error_result(b"p", OSError(code, os.strerror(code))).outcome is outcome


# --- resolve: the paths of files written after the first scan -------------------------------


def resolved(fd: int, path: bytes) -> list[FoundFile | FileResult]:
    return list(resolve(fd, path))


def test_resolve_a_file_and_a_folder(tmp_path: Path, root_fd: int) -> None:
    make(root_of(tmp_path), b"docs/new.txt", b"docs/more/x.txt")
    [one] = resolved(root_fd, b"./docs//new.txt")
    assert isinstance(one, FoundFile)
    assert (one.path, one.name) == (b"docs/new.txt", b"new.txt")
    assert sorted(e.path for e in resolved(root_fd, b"docs")) == [
        b"docs/more/x.txt",
        b"docs/new.txt",
    ]


def test_resolve_never_leaves_the_root(tmp_path: Path, root_fd: int) -> None:
    make(root_of(tmp_path), b"docs/a.txt")
    (tmp_path / "outside.txt").write_text("x")
    os.symlink(tmp_path, root_of(tmp_path) / "up")
    for path in (b"../outside.txt", b"docs/../../outside.txt", b"", b"/"):
        [result] = resolved(root_fd, path)
        assert isinstance(result, FileResult)
        assert result.outcome is FileOutcome.ERROR
    [through_link] = resolved(root_fd, b"up/outside.txt")
    assert isinstance(through_link, FileResult)
    assert through_link.detail == SYMLINK
    [link] = resolved(root_fd, b"up")
    assert isinstance(link, FileResult)
    assert link.detail == SYMLINK


def test_resolve_a_file_that_is_gone(root_fd: int) -> None:
    [gone] = resolved(root_fd, b"not/there.txt")
    assert isinstance(gone, FileResult)
    assert gone.outcome is FileOutcome.SKIPPED


def test_open_file_refuses_a_symlink_and_does_not_block_on_a_fifo(
    tmp_path: Path, root_fd: int
) -> None:
    os.symlink("/etc/hostname", root_of(tmp_path) / "link")
    os.mkfifo(root_of(tmp_path) / "fifo")
    with pytest.raises(OSError, match="Too many levels of symbolic links"):
        open_file(root_fd, b"link")
    fd = open_file(root_fd, b"fifo")  # O_NONBLOCK: a writer-less FIFO must not hang the scan
    os.close(fd)
