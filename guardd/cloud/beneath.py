"""Opening things under a watched folder by file descriptor, one component at a time.

Every component is opened relative to its parent's descriptor with O_NOFOLLOW, so a folder
swapped for a symlink between a check and a change cannot redirect the change outside the
watched homes: the open fails instead (ELOOP or ENOTDIR).
"""

from __future__ import annotations

import os
import stat

DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY
MAX_DEPTH = 2048  # components: PATH_MAX (4096) cannot name a deeper folder


class BeneathError(ValueError):
    """A relative path that could leave its root ('..', absolute, empty parts)."""


def parts_of(relative: str) -> list[str]:
    """The components of a path relative to a root; refuse anything that could climb out."""
    parts = relative.split("/") if relative else []
    if len(parts) > MAX_DEPTH or any(p in ("", ".", "..") or "\0" in p for p in parts):
        raise BeneathError(relative[:80])
    return parts


def open_root(path: str) -> int:
    """Open a configured watch root (IT chose it, so a symlinked /home is followed)."""
    return os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)


def open_dir(root_fd: int, relative: str) -> int:
    """A descriptor of the folder at `relative` under `root_fd`, following no symlink."""
    fd = os.dup(root_fd)
    try:
        for part in parts_of(relative):
            child = os.open(part, DIR_FLAGS, dir_fd=fd)
            os.close(fd)
            fd = child
    except BaseException:
        os.close(fd)
        raise
    return fd


def read_file(root_fd: int, relative: str, limit: int) -> str | None:
    """The text of a regular file under `root_fd` (at most `limit` bytes, undecodable bytes
    replaced), or None when it is missing, not a regular file, or reached through a symlink."""
    parts = parts_of(relative)
    if not parts:
        return None
    try:
        parent = open_dir(root_fd, "/".join(parts[:-1]))
    except OSError:
        return None
    try:
        fd = os.open(parts[-1], FILE_FLAGS, dir_fd=parent)
    except OSError:
        return None
    finally:
        os.close(parent)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        return os.read(fd, limit).decode("utf-8", errors="replace")
    except OSError:
        return None
    finally:
        os.close(fd)


def is_dir(root_fd: int, relative: str) -> bool:
    """Whether `relative` is a real folder under `root_fd` (not a symlink to one)."""
    try:
        os.close(open_dir(root_fd, relative))
    except (OSError, BeneathError):
        return False
    return True
