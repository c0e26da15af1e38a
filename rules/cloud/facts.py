"""What the daemon saw in a home and in a folder, and what detection concludes.

Everything inside HomeFacts and FolderFacts is controlled by the home's owner: file texts may
be malformed, huge or hostile and names may hold control characters. Nothing here trusts them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

# The daemon reads at most this much of each config file; readers ignore anything longer.
MAX_CONFIG_TEXT = 64 * 1024
# The daemon lists at most this many entries of a folder.
MAX_FOLDER_ENTRIES = 4096


@dataclass(frozen=True)
class HomeFacts:
    """One home folder: the config files and folders the signatures ask about, and mounts.

    `files` maps home-relative paths (from `Signatures.home_files()`) that exist to their text;
    `dirs` holds the home-relative paths (from `Signatures.home_dirs()`) that exist as folders;
    `mounts` maps absolute mount points under this home to their filesystem type.
    """

    home: str
    owner_uid: int
    files: Mapping[str, str] = field(default_factory=dict)
    dirs: frozenset[str] = frozenset()
    mounts: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class FolderFacts:
    """One folder under a home (never a symlink) and the names of its direct children."""

    path: str
    owner_uid: int
    entries: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Found:
    """A sync folder to judge (and block unless allowed).

    `path` is absolute, normalised and inside the home (never the home itself); a folder named
    by a config may not exist yet: the daemon checks. `account` is "personal", "business" or
    "" (unknown); `server` is the normalised server URL for Nextcloud/ownCloud, else "".
    `evidence` says in plain words why this is a sync folder; `path` is the only field that
    comes from the user (it may hold any character but NUL), so show it escaped.
    """

    path: str
    provider: str
    name: str
    account: str = ""
    server: str = ""
    evidence: str = ""
