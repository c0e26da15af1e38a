"""A safe walk of a mounted medium: folder descriptors all the way down, never a path.

Every folder is opened relative to its parent's descriptor with O_NOFOLLOW, so a symbolic link
(or a folder swapped for one while we walk) can never lead the walk, or a scan, out of the
medium; a folder on another filesystem (something mounted inside the medium) is not entered.
The walk is a generator over os.scandir iterators: memory stays bounded by the depth, however
many files the medium holds; it costs two descriptors per level (ours and scandir's).
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Generator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from guardd.scanning.result import FileOutcome, FileResult

MAX_DEPTH = 256
# O_NONBLOCK: a FIFO swapped in after the type check must not block the open; O_NOCTTY: a
# terminal device must never become ours.
FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY
DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK

SYMLINK = "symbolic link, not followed"
SPECIAL = "special file, not a regular file"
OTHER_FS = "another filesystem is mounted here: not scanned"
GONE = "removed while the scan ran"


@dataclass(frozen=True)
class FoundFile:
    """A regular file the walk found. `dir_fd` is borrowed from the walk and valid only until
    the walk moves on: os.dup() it to keep it longer."""

    dir_fd: int
    name: bytes
    path: bytes


Entry = FoundFile | FileResult


def error_result(path: bytes, error: OSError) -> FileResult:
    """What an OSError on opening or reading an entry means for the report."""
    if error.errno == errno.ELOOP:
        return FileResult(path, FileOutcome.SKIPPED, detail=SYMLINK)
    if error.errno in (errno.ENOENT, errno.ESTALE):
        return FileResult(path, FileOutcome.SKIPPED, detail=GONE)
    if error.errno == errno.EXDEV:
        return FileResult(path, FileOutcome.SKIPPED, detail=OTHER_FS)
    if error.errno in (errno.ENXIO, errno.ENODEV):
        return FileResult(path, FileOutcome.SKIPPED, detail=SPECIAL)
    reason = os.strerror(error.errno) if error.errno else str(error)
    return FileResult(path, FileOutcome.UNREADABLE, detail=reason)


def open_root(root: Path | int) -> int:
    """A new descriptor of the folder to scan (a given descriptor is duplicated, never taken)."""
    if isinstance(root, int):
        return os.dup(root)
    return os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)


def open_file(dir_fd: int, name: bytes) -> int:
    """Open a file of the medium for reading: never through a symbolic link, never blocking,
    and without touching its access time where the filesystem lets us (O_NOATIME)."""
    try:
        return os.open(name, FILE_FLAGS | os.O_NOATIME, dir_fd=dir_fd)
    except OSError as e:
        if e.errno != errno.EPERM:  # O_NOATIME refused (not owner, no CAP_FOWNER): plain open
            raise
    return os.open(name, FILE_FLAGS, dir_fd=dir_fd)


def open_dir(dir_fd: int, name: bytes) -> int:
    """Open a sub-folder, never through a symbolic link (ELOOP if `name` is one)."""
    try:
        return os.open(name, DIR_FLAGS, dir_fd=dir_fd)
    except NotADirectoryError:
        # With O_DIRECTORY, Linux says ENOTDIR for a symbolic link: tell the two apart.
        if stat.S_ISLNK(os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mode):
            raise OSError(errno.ELOOP, SYMLINK) from None
        raise


def _join(parent: bytes, name: bytes) -> bytes:
    return parent + b"/" + name if parent else name


@dataclass
class _Dir:
    fd: int
    path: bytes
    depth: int
    entries: Iterator[os.DirEntry[str]] = field(init=False)

    def __post_init__(self) -> None:
        try:
            self.entries = os.scandir(self.fd)
        except OSError:
            os.close(self.fd)
            raise

    def close(self) -> None:
        close = getattr(self.entries, "close", None)
        if close is not None:
            close()
        os.close(self.fd)


class _Walk:
    """The state of one walk: a stack of open folders, deepest last."""

    def __init__(self, root_fd: int, prefix: bytes, max_depth: int) -> None:
        self.dev = os.fstat(root_fd).st_dev
        self.max_depth = max_depth
        self.stack = [_Dir(os.dup(root_fd), prefix, 0)]

    def close(self) -> None:
        while self.stack:
            self.stack.pop().close()

    def run(self) -> Iterator[Entry]:
        while self.stack:
            top = self.stack[-1]
            try:
                entry = next(top.entries, None)
            except OSError as e:  # the folder could not be read to its end (EIO)
                self.stack.pop().close()
                yield error_result(top.path or b".", e)
                continue
            if entry is None:
                self.stack.pop().close()
                continue
            found = self._entry(top, entry)
            if found is not None:
                yield found

    def _entry(self, top: _Dir, entry: os.DirEntry[str]) -> Entry | None:
        name = os.fsencode(entry.name)  # the raw bytes (surrogateescape round-trips exactly)
        path = _join(top.path, name)
        try:
            if entry.is_symlink():
                return FileResult(path, FileOutcome.SKIPPED, detail=SYMLINK)
            if entry.is_dir(follow_symlinks=False):
                return self._enter(top, name, path)
            if entry.is_file(follow_symlinks=False):
                return FoundFile(top.fd, name, path)
        except OSError as e:  # d_type unknown and the lstat behind it failed
            return error_result(path, e)
        return FileResult(path, FileOutcome.SKIPPED, detail=SPECIAL)

    def _enter(self, top: _Dir, name: bytes, path: bytes) -> FileResult | None:
        if top.depth + 1 > self.max_depth:
            # Not entered, so not scanned: a problem (not a skip), or malware could hide deep.
            detail = f"folder nested more than {self.max_depth} levels deep: not scanned"
            return FileResult(path, FileOutcome.LIMITS_EXCEEDED, detail=detail)
        try:
            fd = open_dir(top.fd, name)
        except OSError as e:
            return error_result(path, e)
        try:
            same_fs = os.fstat(fd).st_dev == self.dev
        except OSError as e:
            os.close(fd)
            return error_result(path, e)
        if not same_fs:
            os.close(fd)
            return FileResult(path, FileOutcome.SKIPPED, detail=OTHER_FS)
        try:
            self.stack.append(_Dir(fd, path, top.depth + 1))  # _Dir closes fd if it fails
        except OSError as e:
            return error_result(path, e)
        return None


def walk(
    root_fd: int, prefix: bytes = b"", max_depth: int = MAX_DEPTH
) -> Generator[Entry, None, None]:
    """Every regular file under `root_fd` as a FoundFile, and a FileResult for everything the
    walk did not go into (links, special files, other filesystems, unreadable or too-deep
    folders). Paths are relative to the root (after `prefix`), raw bytes. The caller's
    descriptor stays open and untouched."""
    try:
        state = _Walk(root_fd, prefix, max_depth)
    except OSError as e:  # the root folder itself cannot be read
        yield error_result(prefix or b".", e)
        return
    try:
        yield from state.run()
    finally:
        state.close()


def count_files(root_fd: int, max_depth: int = MAX_DEPTH) -> int:
    """How many regular files a walk would find (the progress total)."""
    return sum(1 for entry in walk(root_fd, max_depth=max_depth) if isinstance(entry, FoundFile))


def _parts(path: bytes) -> list[bytes] | None:
    parts = [p for p in path.split(b"/") if p not in (b"", b".")]
    return parts if parts and b".." not in parts else None


def resolve(root_fd: int, path: bytes) -> Generator[Entry, None, None]:
    """The entries for one path relative to the root: the file itself, or everything under it
    when it is a folder. Every step down is O_NOFOLLOW and stays on the root's filesystem."""
    parts = _parts(path)
    if parts is None:
        yield FileResult(path, FileOutcome.ERROR, detail="not a path inside the medium")
        return
    clean = b"/".join(parts)
    try:
        dir_fd = _open_parent(root_fd, parts[:-1])
    except NotADirectoryError:  # a file where a folder was: the path is not there any more
        yield FileResult(clean, FileOutcome.SKIPPED, detail=GONE)
        return
    except OSError as e:
        yield error_result(clean, e)
        return
    try:
        yield from _resolve_last(dir_fd, parts[-1], clean, os.fstat(root_fd).st_dev)
    finally:
        os.close(dir_fd)


def _open_parent(root_fd: int, parts: list[bytes]) -> int:
    dev = os.fstat(root_fd).st_dev
    fd = os.dup(root_fd)
    for part in parts:
        try:
            child = open_dir(fd, part)
        finally:
            os.close(fd)
        fd = child
        if os.fstat(fd).st_dev != dev:
            os.close(fd)
            raise OSError(errno.EXDEV, OTHER_FS)
    return fd


def _resolve_last(dir_fd: int, name: bytes, path: bytes, dev: int) -> Generator[Entry, None, None]:
    try:
        st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except OSError as e:
        yield error_result(path, e)
        return
    if stat.S_ISREG(st.st_mode):
        yield FoundFile(dir_fd, name, path)
    elif stat.S_ISLNK(st.st_mode):
        yield FileResult(path, FileOutcome.SKIPPED, detail=SYMLINK)
    elif not stat.S_ISDIR(st.st_mode):
        yield FileResult(path, FileOutcome.SKIPPED, detail=SPECIAL)
    elif st.st_dev != dev:
        yield FileResult(path, FileOutcome.SKIPPED, detail=OTHER_FS)
    else:
        try:
            sub = open_dir(dir_fd, name)
        except OSError as e:
            yield error_result(path, e)
            return
        try:
            yield from walk(sub, prefix=path, max_depth=MAX_DEPTH - path.count(b"/") - 1)
        finally:
            os.close(sub)
