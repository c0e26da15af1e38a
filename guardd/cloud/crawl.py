"""Walking a watched folder by descriptor: every folder's owner and the names in it.

Never follows a symlink (each child is opened with O_NOFOLLOW from its parent's descriptor),
never crosses into another filesystem below a home (a FUSE mount is seen through the mount
table instead), and keeps at most one descriptor per level open.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field

from guardd.cloud.beneath import DIR_FLAGS, MAX_DEPTH

MAX_ENTRIES = 4096  # names kept per folder: markers sit among the first in any real folder


@dataclass(frozen=True)
class Seen:
    """One folder as the crawl saw it."""

    relative: str  # under the watch root: "alice/Dropbox"
    uid: int
    dev: int
    ino: int
    entries: frozenset[str]


@dataclass
class CrawlCounts:
    """What a crawl went through."""

    folders: int = 0
    files: int = 0
    skipped: int = 0  # unreadable folders, too deep, other filesystems
    errors: list[str] = field(default_factory=list)


def listing(fd: int) -> tuple[list[str], list[str], int]:
    """(every name, the names of sub-folders, how many other entries) of an open folder."""
    names: list[str] = []
    folders: list[str] = []
    others = 0
    with os.scandir(fd) as it:
        for entry in it:
            names.append(entry.name)
            if entry.is_dir(follow_symlinks=False):
                folders.append(entry.name)
            else:
                others += 1
    return names, folders, others


def seen(fd: int, relative: str, names: list[str]) -> Seen:
    """The facts of one open folder."""
    st = os.fstat(fd)
    kept = frozenset(names if len(names) <= MAX_ENTRIES else sorted(names)[:MAX_ENTRIES])
    return Seen(relative, st.st_uid, st.st_dev, st.st_ino, kept)


def crawl(root_fd: int, counts: CrawlCounts) -> Iterator[Seen]:
    """Every folder under the root (not the root itself), depth first."""
    root_dev = os.fstat(root_fd).st_dev
    try:
        _, folders, others = listing(root_fd)
    except OSError as e:
        counts.errors.append(f".: {e.strerror}")
        return
    counts.files += others
    for name in folders:
        yield from _visit(root_fd, name, name, root_dev, 1, counts)


def _visit(
    parent: int, name: str, relative: str, dev: int, depth: int, counts: CrawlCounts
) -> Iterator[Seen]:
    if depth > MAX_DEPTH:
        counts.skipped += 1
        return
    try:
        fd = os.open(name, DIR_FLAGS, dir_fd=parent)
    except OSError:
        counts.skipped += 1  # gone, or swapped for a symlink since it was listed
        return
    try:
        st = os.fstat(fd)
        # A home (depth 1) may be a mount of its own; below it, other filesystems are not
        # walked (the mount table reports sync mounts such as fuse.rclone).
        if depth > 1 and st.st_dev != dev:
            counts.skipped += 1
            return
        try:
            names, folders, others = listing(fd)
        except OSError as e:
            counts.skipped += 1
            counts.errors.append(f"{relative}: {e.strerror}")
            return
        counts.folders += 1
        counts.files += others
        yield seen(fd, relative, names)
        for child in folders:
            yield from _visit(fd, child, f"{relative}/{child}", st.st_dev, depth + 1, counts)
    finally:
        os.close(fd)
