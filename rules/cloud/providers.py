"""Provider signatures: how each sync client's folders are recognised, as plain data.

A provider is found by markers (names or globs among a folder's children), home folders
that are sync folders by their presence, config files read by one of a few readers written
in code, folders a client uses by default once it is set up, and FUSE mount types.
The packaged defaults live in providers.toml; IT add or replace providers with `[[provider]]`
tables in the rules files.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum

from rules._text import show, text_problem

MAX_PROVIDER_NAME_LEN = 40
MAX_MARKER_LEN = 255
MAX_HOME_PATH_LEN = 255
MAX_PROVIDERS = 256

# Readers are code; data chooses one by name (see rules.cloud.readers, which checks it has
# exactly these).
READERS = ("dropbox-info-json", "onedrive-config", "nextcloud-cfg", "rclone-conf")

_PROVIDER_ID = re.compile(r"[a-z0-9._-]{1,64}")
_MOUNT_TYPE = re.compile(r"[A-Za-z0-9_.+-]{1,64}")
_GLOB_CHARS = frozenset("*?[")


class MarkerMatch(StrEnum):
    """Whether a folder needs any one of a provider's markers or all of them."""

    ANY = "any"
    ALL = "all"


def provider_id_problem(value: str) -> str | None:
    """Check a provider id: safe in logs, file names and CLIs."""
    if _PROVIDER_ID.fullmatch(value):
        return None
    return (
        f"provider ids are 1 to 64 characters from a-z, 0-9, '.', '_' and '-' (got {show(value)})"
    )


def provider_name_problem(value: str) -> str | None:
    """Check a provider's display name, shown to staff."""
    return text_problem("name", value, MAX_PROVIDER_NAME_LEN)


def marker_problem(value: str) -> str | None:
    """Check a marker: a file name or a glob of one ('*', '?', '[...]'), never a path."""
    message = text_problem("a marker", value, MAX_MARKER_LEN)
    if message is not None:
        return message
    if "/" in value or value in (".", ".."):
        return f"markers are names of things inside a folder, not paths (got {show(value)})"
    return None


def home_path_problem(value: str) -> str | None:
    """Check a home-relative path like ".config/rclone/rclone.conf" or "pCloudDrive"."""
    message = text_problem("a home path", value, MAX_HOME_PATH_LEN)
    if message is not None:
        return message
    parts = value.split("/")
    if value.startswith(("/", "~")) or any(part in ("", ".", "..") for part in parts):
        return (
            'home paths are relative to the home, like ".config/rclone/rclone.conf", '
            f"with no '..' or empty parts (got {show(value)})"
        )
    return None


def mount_type_problem(value: str) -> str | None:
    """Check a filesystem type as /proc/self/mountinfo shows it, like "fuse.rclone"."""
    if _MOUNT_TYPE.fullmatch(value):
        return None
    return f'mount_types entries must be filesystem types like "fuse.rclone" (got {show(value)})'


def reader_problem(value: str) -> str | None:
    """Check a config reader's name."""
    if value in READERS:
        return None
    choices = ", ".join(repr(reader) for reader in READERS)
    return f"config must be one of {choices}, not {show(value)}"


def _check(message: str | None) -> None:
    if message is not None:
        raise ValueError(message)


@dataclass(frozen=True)
class Provider:
    """One sync client's signature.

    `config` names the reader for `config_files` ("" when there are none);
    `default_folders` are sync folders when one of `client_dirs` exists and the configs name
    no folder. `source`/`line` say where a rules file defined it ("" for the packaged ones).
    """

    provider_id: str
    name: str
    markers: tuple[str, ...] = ()
    match: MarkerMatch = MarkerMatch.ANY
    home_folders: tuple[str, ...] = ()
    config: str = ""
    config_files: tuple[str, ...] = ()
    client_dirs: tuple[str, ...] = ()
    default_folders: tuple[str, ...] = ()
    mount_types: tuple[str, ...] = ()
    source: str = ""
    line: int = 0
    _literal: frozenset[str] = field(init=False, repr=False, compare=False)
    _globs: tuple[tuple[str, re.Pattern[str]], ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        for message in self.problems():
            raise ValueError(message)
        literal = frozenset(m for m in self.markers if not _GLOB_CHARS & set(m))
        globs = tuple(
            (m, re.compile(fnmatch.translate(m))) for m in self.markers if m not in literal
        )
        object.__setattr__(self, "_literal", literal)
        object.__setattr__(self, "_globs", globs)

    def problems(self) -> list[str]:
        """Every reason this signature is not valid, in plain words (empty when it is)."""
        messages = [provider_id_problem(self.provider_id), provider_name_problem(self.name)]
        messages += [marker_problem(marker) for marker in self.markers]
        for paths in (self.home_folders, self.config_files, self.client_dirs):
            messages += [home_path_problem(path) for path in paths]
        messages += [home_path_problem(path) for path in self.default_folders]
        messages += [mount_type_problem(kind) for kind in self.mount_types]
        messages += self._shape_problems()
        return [message for message in messages if message is not None]

    def _shape_problems(self) -> list[str | None]:
        shown = show(self.provider_id)
        messages: list[str | None] = []
        if self.config and reader_problem(self.config) is not None:
            messages.append(reader_problem(self.config))
        if bool(self.config) != bool(self.config_files):
            messages.append(f"provider {shown}: config and config_files go together")
        if bool(self.default_folders) != bool(self.client_dirs):
            messages.append(f"provider {shown}: default_folders and client_dirs go together")
        if not (self.markers or self.home_folders or self.config or self.default_folders) and (
            not self.mount_types
        ):
            messages.append(
                f"provider {shown} has nothing to recognise it by: give markers, home_folders, "
                "config with config_files, client_dirs with default_folders, or mount_types"
            )
        return messages

    def marker_hits(self, entries: frozenset[str]) -> tuple[str, ...]:
        """The markers found among `entries` when they are enough to recognise this provider
        (all of them for match = "all"), else ()."""
        hits = {marker for marker in self._literal if marker in entries}
        hits |= {marker for marker, pattern in self._globs if any(map(pattern.match, entries))}
        if not hits or (self.match is MarkerMatch.ALL and len(hits) < len(self.markers)):
            return ()
        return tuple(marker for marker in self.markers if marker in hits)


@dataclass(frozen=True)
class Signatures:
    """Every known provider, in the order detection tries them (each id once)."""

    providers: tuple[Provider, ...]
    _by_id: dict[str, Provider] = field(init=False, repr=False, compare=False)
    _any_marker: re.Pattern[str] | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        by_id: dict[str, Provider] = {}
        for provider in self.providers:
            if by_id.setdefault(provider.provider_id, provider) is not provider:
                raise ValueError(f"provider id {show(provider.provider_id)} is used twice")
        object.__setattr__(self, "_by_id", by_id)
        markers = sorted({marker for p in self.providers for marker in p.markers})
        pattern = "|".join(f"(?:{fnmatch.translate(marker)})" for marker in markers)
        object.__setattr__(self, "_any_marker", re.compile(pattern) if markers else None)

    def marker_entries(self, entries: frozenset[str]) -> frozenset[str]:
        """The entries that match some provider's marker: one pass over a folder's entries,
        so folders with no marker (nearly all) cost one regex match per entry."""
        if self._any_marker is None:
            return frozenset()
        return frozenset(filter(self._any_marker.match, entries))

    def get(self, provider_id: str) -> Provider | None:
        """The provider with this id, or None."""
        return self._by_id.get(provider_id)

    def ids(self) -> frozenset[str]:
        """Every provider id."""
        return frozenset(self._by_id)

    def home_files(self) -> frozenset[str]:
        """Home-relative config files the daemon should read (at most 64 KiB each)."""
        return frozenset(path for p in self.providers for path in p.config_files)

    def home_dirs(self) -> frozenset[str]:
        """Home-relative folders whose existence the daemon should report."""
        return frozenset(
            path
            for p in self.providers
            for path in (*p.home_folders, *p.client_dirs, *p.default_folders)
        )

    def mount_provider(self, fs_type: str) -> Provider | None:
        """The first provider that owns mounts of this filesystem type, or None."""
        return next((p for p in self.providers if fs_type in p.mount_types), None)

    def with_providers(self, extra: Iterable[Provider]) -> Signatures:
        """These signatures with `extra` added; an extra provider with a known id replaces it
        in place."""
        extra = tuple(extra)
        replaced = {p.provider_id: p for p in extra}
        kept = tuple(replaced.pop(p.provider_id, p) for p in self.providers)
        return Signatures(kept + tuple(p for p in extra if p.provider_id in replaced))
