"""Walking a watched folder by descriptor: every folder's owner and the names that matter.

Never follows a symlink (each folder is reached component by component from the root with
O_NOFOLLOW), never crosses into another filesystem below a home (a FUSE mount is seen
through the mount table instead), holds one descriptor at a time, and has no depth limit of
its own (a folder deeper than any path can name is counted as skipped).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from guardd.cloud.beneath import BeneathError, open_dir

# (open folder, its names, its owner) -> the names detection needs (the markers)
Keep = Callable[[int, list[str], int], frozenset[str]]


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
    unguarded_homes: list[str] = field(default_factory=list)  # symlinks in place of a home


def listing(fd: int) -> tuple[list[str], list[str], list[str]]:
    """(every name, the names of sub-folders, the names of symlinks) of an open folder."""
    names: list[str] = []
    folders: list[str] = []
    links: list[str] = []
    with os.scandir(fd) as it:
        for entry in it:
            names.append(entry.name)
            if entry.is_dir(follow_symlinks=False):
                folders.append(entry.name)
            elif entry.is_symlink():
                links.append(entry.name)
    return names, folders, links


def seen(fd: int, relative: str, names: list[str], keep: Keep) -> Seen:
    """The facts of one open folder."""
    st = os.fstat(fd)
    return Seen(relative, st.st_uid, st.st_dev, st.st_ino, keep(fd, names, st.st_uid))


def crawl(root_fd: int, counts: CrawlCounts, keep: Keep) -> Iterator[Seen]:
    """Every folder under the root (not the root itself), depth first, homes first."""
    try:
        _, homes, links = listing(root_fd)
    except OSError as e:
        counts.errors.append(f".: {e.strerror}")
        return
    counts.unguarded_homes.extend(sorted(links))
    root_dev = os.fstat(root_fd).st_dev
    stack = [(home, root_dev, True) for home in sorted(homes, reverse=True)]
    while stack:
        relative, parent_dev, is_home = stack.pop()
        found = _visit(root_fd, relative, parent_dev, is_home, counts, keep)
        if found is None:
            continue
        folder, children = found
        yield folder
        stack.extend((f"{relative}/{c}", folder.dev, False) for c in sorted(children, reverse=True))


def _visit(
    root_fd: int, relative: str, parent_dev: int, is_home: bool, counts: CrawlCounts, keep: Keep
) -> tuple[Seen, list[str]] | None:
    try:
        fd = open_dir(root_fd, relative)
    except (OSError, BeneathError):
        counts.skipped += 1  # gone, swapped for a symlink since it was listed, or too deep
        return None
    try:
        # A home may be a mount of its own; below it, other filesystems are not walked.
        if not is_home and os.fstat(fd).st_dev != parent_dev:
            counts.skipped += 1
            return None
        try:
            names, folders, _ = listing(fd)
        except OSError as e:
            counts.skipped += 1
            counts.errors.append(f"{relative}: {e.strerror}")
            return None
        counts.folders += 1
        counts.files += len(names) - len(folders)
        return seen(fd, relative, names, keep), folders
    finally:
        os.close(fd)
