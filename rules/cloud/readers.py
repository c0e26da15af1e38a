"""Readers of the config files that name sync folders: a small closed set, chosen by name.

Each reader takes the text of one config file (untrusted: the user's), the home and the
file's home-relative path, and returns the sync folders it names. Readers never raise, read
at most MAX_CONFIG_TEXT characters, and return only paths strictly inside the home.
"""

from __future__ import annotations

import json
import posixpath
from collections.abc import Callable
from dataclasses import dataclass

from rules.cloud._ini import ini_lines, unquote
from rules.cloud.facts import MAX_CONFIG_TEXT
from rules.cloud.paths import inside_home
from rules.cloud.servers import normal_server

# rclone remote types that never leave the machine; every other type counts as cloud storage
# (a "crypt" or "union" remote wraps other remotes, so it counts: fail closed).
_LOCAL_RCLONE_TYPES = frozenset({"local", "alias"})
_RCLONE_ENCRYPTED = "RCLONE_ENCRYPT_V0:"
_ONEDRIVE_DEFAULT = "~/OneDrive"
# Keys only a OneDrive business (Microsoft 365) set-up has.
_ONEDRIVE_BUSINESS_KEYS = ("drive_id", "azure_tenant_id")


@dataclass(frozen=True)
class ConfigFolder:
    """A sync folder a config names.

    `client_folder` is set when the folder is the client's own config folder, blocked only
    when no mount of the provider is found (rclone: no mount means ~/.config/rclone).
    """

    path: str
    account: str = ""
    server: str = ""
    evidence: str = ""
    client_folder: bool = False


Reader = Callable[[str, str, str], list[ConfigFolder]]


def read_config(reader: str, text: str, home: str, file: str) -> list[ConfigFolder]:
    """The sync folders named by `text`, the config `file` (home-relative) of `home`.

    Unknown readers, texts over MAX_CONFIG_TEXT characters and unreadable texts name none.
    """
    function = READER_FUNCTIONS.get(reader)
    if function is None or len(text) > MAX_CONFIG_TEXT:
        return []
    folders = function(text, home, file)
    unique: dict[str, ConfigFolder] = {}
    for folder in folders:
        unique.setdefault(folder.path, folder)
    return list(unique.values())


def _named(file: str) -> str:
    return f"named in ~/{file}"


def read_dropbox_info(text: str, home: str, file: str) -> list[ConfigFolder]:
    """~/.dropbox/info.json: {"personal": {"path": ...}, "business": {"path": ...}}."""
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):
        return []
    if not isinstance(data, dict):
        return []
    found: list[ConfigFolder] = []
    for account in ("personal", "business"):
        entry = data.get(account)
        raw = entry.get("path") if isinstance(entry, dict) else None
        path = inside_home(raw, home) if isinstance(raw, str) else None
        if path is not None:
            evidence = f"named in ~/{file} as the {account} Dropbox folder"
            found.append(ConfigFolder(path, account=account, evidence=evidence))
    return found


def read_onedrive_config(text: str, home: str, file: str) -> list[ConfigFolder]:
    """~/.config/onedrive/config: `sync_dir = "..."` (default ~/OneDrive).

    The config says business only when it names a SharePoint drive or an Azure tenant;
    otherwise the account is taken to be personal (the stricter guess).
    """
    values: dict[str, str] = {}
    for section, key, value in ini_lines(text):
        if not section:
            values[key] = unquote(value)
    business = any(values.get(key, "").strip() for key in _ONEDRIVE_BUSINESS_KEYS)
    path = inside_home(values.get("sync_dir") or _ONEDRIVE_DEFAULT, home)
    if path is None:
        return []
    account = "business" if business else "personal"
    return [ConfigFolder(path, account=account, evidence=_named(file))]


def read_nextcloud_cfg(text: str, home: str, file: str) -> list[ConfigFolder]:
    """Nextcloud's and ownCloud's QSettings file: in [Accounts], `N\\url=` is account N's
    server and `N\\<kind>\\<id>\\localPath=` each of its folders."""
    urls: dict[str, str] = {}
    folders: list[tuple[str, str]] = []
    for section, key, value in ini_lines(text):
        if section != "Accounts":
            continue
        parts = key.split("\\")
        if len(parts) == 2 and parts[1] == "url":
            urls[parts[0]] = unquote(value)
        elif len(parts) == 4 and parts[3] == "localPath":
            folders.append((parts[0], unquote(value)))
    found: list[ConfigFolder] = []
    for account, raw in folders:
        path = inside_home(raw, home)
        if path is not None:
            server = normal_server(urls.get(account, "")) or ""
            found.append(ConfigFolder(path, server=server, evidence=_named(file)))
    return found


def read_rclone_conf(text: str, home: str, file: str) -> list[ConfigFolder]:
    """rclone.conf: when it sets up a remote that is not local (or is encrypted, so cannot
    be told), its folder (~/.config/rclone) is where rclone gets its access."""
    remote = _RCLONE_ENCRYPTED in text or any(
        section and key == "type" and value.strip().lower() not in _LOCAL_RCLONE_TYPES
        for section, key, value in ini_lines(text)
    )
    path = inside_home(posixpath.dirname(file), home) if remote else None
    if path is None:
        return []
    evidence = f"~/{file} sets up remote cloud storage"
    return [ConfigFolder(path, evidence=evidence, client_folder=True)]


READER_FUNCTIONS: dict[str, Reader] = {
    "dropbox-info-json": read_dropbox_info,
    "onedrive-config": read_onedrive_config,
    "nextcloud-cfg": read_nextcloud_cfg,
    "rclone-conf": read_rclone_conf,
}
