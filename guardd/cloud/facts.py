"""Gathering the facts rules/ judges: a home's sync-client configs and a folder's names.

Everything is read by descriptor under the watch root (guardd.cloud.beneath); contents are
the user's and untrusted, so they are only ever handed to rules/ as text, bounded.
"""

from __future__ import annotations

import os

from guardd.cloud.beneath import is_dir, open_dir, read_file
from guardd.cloud.crawl import Keep, Seen, listing, seen
from guardd.media.mounts import Mount
from rules import FolderFacts, HomeFacts, Signatures

MAX_CONFIG_BYTES = 64 * 1024


def home_facts(
    root_fd: int, root: str, home: str, sigs: Signatures, mounts: list[Mount]
) -> HomeFacts:
    """The facts of the home `home` (one name under the watch root `root`)."""
    path = f"{root.rstrip('/')}/{home}"
    files: dict[str, str] = {}
    for relative in sorted(sigs.home_files()):
        text = read_file(root_fd, f"{home}/{relative}", MAX_CONFIG_BYTES)
        if text is not None:
            files[relative] = text
    dirs = frozenset(d for d in sigs.home_dirs() if is_dir(root_fd, f"{home}/{d}"))
    under = f"{path}/"
    found_mounts = {m.mountpoint: m.fstype for m in mounts if m.mountpoint.startswith(under)}
    return HomeFacts(
        home=path, owner_uid=_owner(root_fd, home), files=files, dirs=dirs, mounts=found_mounts
    )


def _owner(root_fd: int, home: str) -> int:
    try:
        fd = open_dir(root_fd, home)
    except OSError:
        return -1
    try:
        return os.fstat(fd).st_uid
    finally:
        os.close(fd)


def marker_keeper(sigs: Signatures) -> Keep:
    """The names that count as markers in a folder: those matching a provider's marker and
    made by the folder's owner (or root). Someone else's marker in a folder they can write
    to must not get its owner locked out of it."""

    def keep(fd: int, names: list[str], owner: int) -> frozenset[str]:
        candidates = sigs.marker_entries(frozenset(names))
        if not candidates or owner == 0:
            return candidates
        return frozenset(name for name in candidates if _owner_of(fd, name) in (owner, 0))

    return keep


def _owner_of(fd: int, name: str) -> int:
    try:
        return os.stat(name, dir_fd=fd, follow_symlinks=False).st_uid
    except OSError:
        return -1


def look(fd: int, relative: str, keep: Keep, owner: int | None = None) -> Seen:
    """The facts of one folder already open at `fd` (markers judged against `owner`, the
    recorded owner of a blocked folder, else the folder's own)."""
    names, _, _ = listing(fd)
    if owner is None:
        return seen(fd, relative, names, keep)
    st = os.fstat(fd)
    return Seen(relative, st.st_uid, st.st_dev, st.st_ino, keep(fd, names, owner))


def folder_facts(root: str, folder: Seen, owner_uid: int) -> FolderFacts:
    """What rules/ needs of a folder: its absolute path, its owner and its names."""
    return FolderFacts(
        path=f"{root.rstrip('/')}/{folder.relative}", owner_uid=owner_uid, entries=folder.entries
    )
