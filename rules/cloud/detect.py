"""Which folders of a home are sync folders: a pure function of the facts and the signatures.

A folder counts only with real evidence: a client's markers inside it, a client's config
naming it, a client's own folder (pCloudDrive) or a client's mount. A folder merely named
"Dropbox" is not a sync folder.
"""

from __future__ import annotations

import posixpath

from rules.cloud.facts import FolderFacts, Found, HomeFacts
from rules.cloud.paths import home_relative, is_inside, normal_home
from rules.cloud.providers import Provider, Signatures
from rules.cloud.readers import ConfigFolder, read_config


def found_in_home(home: HomeFacts, sigs: Signatures) -> list[Found]:
    """The sync folders a home's configs, folders and mounts show, each path once.

    Provider by provider (in signature order): the folders its configs name, then its own
    folders; then the mounts. A path is reported once, by the first evidence for it.
    A folder a config names may not exist (yet): the daemon checks before acting.
    """
    root = normal_home(home.home)
    if root is None:
        return []
    found: dict[str, Found] = {}
    mounted = _mounts(home, root, sigs)
    for provider in sigs.providers:
        named = _configured(home, provider)
        for folder in named:
            if folder.client_folder and any(f.provider == provider.provider_id for f in mounted):
                continue
            found.setdefault(folder.path, _from_config(folder, provider))
        for found_here in _home_folders(home, provider, configured=bool(named)):
            found.setdefault(found_here.path, found_here)
    for found_here in mounted:
        found.setdefault(found_here.path, found_here)
    return list(found.values())


def found_in_folder(folder: FolderFacts, home: HomeFacts, sigs: Signatures) -> Found | None:
    """The provider whose markers are in `folder`, or None; with the account and server of
    the home's config that names this folder, when that config is the same provider's.

    Never the home itself, nor a folder outside it. When several providers' markers are
    there, the first in signature order wins, except that a config naming the folder picks
    its provider among those whose markers are the same (Nextcloud and ownCloud share them).
    """
    root = normal_home(home.home)
    path = posixpath.normpath(folder.path) if folder.path.startswith("/") else ""
    if root is None or not path or "\x00" in path or not is_inside(path, root):
        return None
    entries = sigs.marker_entries(folder.entries)
    if not entries:
        return None
    matches = [(p, hits) for p in sigs.providers if (hits := p.marker_hits(entries))]
    if not matches:
        return None
    for candidate, candidate_hits in matches:
        config = _config_naming(path, home, candidate)
        if config is not None and _explains(candidate, matches):
            evidence = f"{_has(candidate_hits)}, {config.evidence}"
            return Found(
                path, candidate.provider_id, candidate.name, config.account, config.server, evidence
            )
    provider, hits = matches[0]
    return Found(path, provider.provider_id, provider.name, evidence=_has(hits))


def _explains(provider: Provider, matches: list[tuple[Provider, tuple[str, ...]]]) -> bool:
    # A config's provider explains the folder only if its own markers cover every marker
    # found: else another client syncs it too, and the folder is judged without the config.
    return all(set(hits) <= set(provider.markers) for _, hits in matches)


def _has(hits: tuple[str, ...]) -> str:
    return "has " + _and(hits)


def _and(words: tuple[str, ...]) -> str:
    if len(words) == 1:
        return words[0]
    return ", ".join(words[:-1]) + " and " + words[-1]


def _configured(home: HomeFacts, provider: Provider) -> list[ConfigFolder]:
    folders: list[ConfigFolder] = []
    for file in provider.config_files:
        text = home.files.get(file)
        if text is not None:
            folders += read_config(provider.config, text, home.home, file)
    return folders


def _config_naming(path: str, home: HomeFacts, provider: Provider) -> ConfigFolder | None:
    return next((f for f in _configured(home, provider) if f.path == path), None)


def _from_config(folder: ConfigFolder, provider: Provider) -> Found:
    return Found(
        folder.path,
        provider.provider_id,
        provider.name,
        folder.account,
        folder.server,
        folder.evidence,
    )


def _home_folders(home: HomeFacts, provider: Provider, configured: bool) -> list[Found]:
    found: list[Found] = []
    for folder in provider.home_folders:
        path = home_relative(folder, home.home)
        if folder in home.dirs and path is not None:
            evidence = f"~/{folder} is {provider.name}'s own folder"
            found.append(Found(path, provider.provider_id, provider.name, evidence=evidence))
    client = next((d for d in provider.client_dirs if d in home.dirs), None)
    if client is None or configured:
        return found
    for folder in provider.default_folders:
        path = home_relative(folder, home.home)
        if folder in home.dirs and path is not None:
            evidence = f"{provider.name} is set up in ~/{client} and ~/{folder} is its usual folder"
            found.append(Found(path, provider.provider_id, provider.name, evidence=evidence))
    return found


def _mounts(home: HomeFacts, root: str, sigs: Signatures) -> list[Found]:
    found: list[Found] = []
    for mount, fs_type in sorted(home.mounts.items()):
        provider = sigs.mount_provider(fs_type)
        path = posixpath.normpath(mount) if mount.startswith("/") else ""
        if provider is None or not path or "\x00" in path or not is_inside(path, root):
            continue
        evidence = f"mounted here by {provider.name} ({fs_type})"
        found.append(Found(path, provider.provider_id, provider.name, evidence=evidence))
    return found
