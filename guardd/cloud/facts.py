"""Gathering the facts rules/ judges: a home's sync-client configs and a folder's names.

Everything is read by descriptor under the watch root (guardd.cloud.beneath); contents are
the user's and untrusted, so they are only ever handed to rules/ as text, bounded.
"""

from __future__ import annotations

import os

from guardd.cloud.beneath import is_dir, open_dir, read_file
from guardd.cloud.crawl import Seen, listing, seen
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


def look(fd: int, relative: str) -> Seen:
    """The facts of one folder already open at `fd`."""
    names, _, _ = listing(fd)
    return seen(fd, relative, names)


def folder_facts(root: str, folder: Seen, owner_uid: int) -> FolderFacts:
    """What rules/ needs of a folder: its absolute path, its owner and its names."""
    return FolderFacts(
        path=f"{root.rstrip('/')}/{folder.relative}", owner_uid=owner_uid, entries=folder.entries
    )
