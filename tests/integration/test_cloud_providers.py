"""Every provider guardd knows, found and blocked both when its folder appears while guardd
runs and when it was there before guardd started (real inotify, real crawl)."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest
from cloud_support import LOCKED, STAFF, folder_state, make_home, make_tree, wait_state
from conftest import GuarddFactory

Setup = Callable[[Path], Path]  # makes a provider's folder (and config) in a home; its path


def _folder(home: Path, relative: str, markers: tuple[str, ...] = ()) -> Path:
    folder = home / relative
    make_tree(folder, markers=markers)
    return folder


def _config(home: Path, relative: str, text: str) -> None:
    path = home / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    os.chown(path, STAFF, STAFF)


def dropbox(home: Path) -> Path:
    return _folder(home, "Dropbox", (".dropbox", ".dropbox.cache"))


def dropbox_business(home: Path) -> Path:
    folder = _folder(home, "Dropbox (Old School)")
    info = {"business": {"path": str(folder), "host": 1}}
    _config(home, ".dropbox/info.json", json.dumps(info))
    return folder


def onedrive(home: Path) -> Path:
    folder = _folder(home, "OneDrive Personal")
    _config(home, ".config/onedrive/config", 'sync_dir = "~/OneDrive Personal"\n')
    return folder


def nextcloud(home: Path) -> Path:
    return _folder(home, "Nextcloud", (".sync_5e1f.db",))


def owncloud(home: Path) -> Path:
    folder = _folder(home, "ownCloud", ("._sync_77aa.db",))
    cfg = f"[Accounts]\n0\\url=https://oc.example.org\n0\\Folders\\1\\localPath={folder}/\n"
    _config(home, ".config/ownCloud/owncloud.cfg", cfg)
    return folder


def mega(home: Path) -> Path:
    return _folder(home, "Work/MEGA stuff", (".debris",))


def pcloud(home: Path) -> Path:
    return _folder(home, "pCloudDrive")


def rclone_config(home: Path) -> Path:
    _config(home, ".config/rclone/rclone.conf", "[school-gdrive]\ntype = drive\nscope = drive\n")
    return home / ".config" / "rclone"


def syncthing(home: Path) -> Path:
    return _folder(home, "Documents/Shared with phone", (".stfolder",))


PROVIDERS: dict[str, tuple[Setup, str]] = {
    "dropbox": (dropbox, "dropbox"),
    "dropbox-info-json": (dropbox_business, "dropbox"),
    "onedrive-config": (onedrive, "onedrive"),
    "nextcloud": (nextcloud, "nextcloud"),
    "owncloud-cfg": (owncloud, "owncloud"),
    "mega": (mega, "mega"),
    "pcloud": (pcloud, "pcloud"),
    "rclone-conf": (rclone_config, "rclone"),
    "syncthing": (syncthing, "syncthing"),
}


@pytest.mark.parametrize("when", ["while-running", "before-start"])
@pytest.mark.parametrize("name", sorted(PROVIDERS))
def test_each_provider_is_found_and_blocked(
    guardd: GuarddFactory, world: Path, name: str, when: str
) -> None:
    setup, provider = PROVIDERS[name]
    root = world / "homes"
    home = make_home(root)
    if when == "before-start":
        folder = setup(home)
        daemon = guardd(homes=[root])
    else:
        daemon = guardd(homes=[root])
        folder = setup(home)
    shown = wait_state(daemon, folder, "blocked")
    assert shown["provider"] == provider
    assert shown["evidence"]
    assert folder_state(folder) == LOCKED
    assert folder_state(home) == (0o755, STAFF, STAFF)  # the home itself is never touched
