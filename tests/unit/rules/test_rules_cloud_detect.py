"""found_in_folder and found_in_home: sync folders from facts alone, for every provider."""

from __future__ import annotations

import json

import pytest

from rules import FolderFacts, Found, HomeFacts, default_signatures, found_in_folder, found_in_home

HOME = "/home/alice"
SIGS = default_signatures()
NEXTCLOUD_CFG = "\n".join(
    [
        "[General]",
        "clientVersion=3.9.0",
        "",
        "[Accounts]",
        "0\\Folders\\1\\localPath=/home/alice/Nextcloud/",
        "0\\Folders\\1\\journalPath=.sync_0a1b2c.db",
        "0\\url=https://Cloud.School.example/",
        "0\\dav_user=alice",
        "version=2",
    ]
)


def _home(
    files: dict[str, str] | None = None,
    dirs: frozenset[str] = frozenset(),
    mounts: dict[str, str] | None = None,
) -> HomeFacts:
    return HomeFacts(HOME, 1000, files or {}, dirs, mounts or {})


def _folder(path: str, *entries: str) -> FolderFacts:
    return FolderFacts(path, 1000, frozenset({"notes.odt", "Photos", *entries}))


# --- markers -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("entries", "provider", "evidence"),
    [
        ((".dropbox", ".dropbox.cache"), "dropbox", "has .dropbox and .dropbox.cache"),
        ((".sync_0a1b2c3d.db",), "nextcloud", "has .sync_*.db"),
        (("._sync_0a1b2c3d.db", ".sync_0a1b2c3d.db-wal"), "nextcloud", "has ._sync_*.db"),
        ((".csync_journal.db",), "nextcloud", "has .csync_journal.db"),
        ((".owncloudsync.log",), "nextcloud", "has .owncloudsync.log"),
        ((".debris",), "mega", "has .debris"),
        ((".stfolder",), "syncthing", "has .stfolder"),
    ],
)
def test_each_providers_markers_make_a_sync_folder(
    entries: tuple[str, ...], provider: str, evidence: str
) -> None:
    found = found_in_folder(_folder(f"{HOME}/Sync", *entries), _home(), SIGS)
    assert found is not None
    assert (found.provider, found.path, found.evidence) == (provider, f"{HOME}/Sync", evidence)
    assert (found.account, found.server) == ("", "")
    assert found.name == SIGS.get(provider).name  # type: ignore[union-attr]


@pytest.mark.parametrize("path", [f"{HOME}/Dropbox", f"{HOME}/Documents/2026/work/Dropbox"])
def test_top_level_and_nested_folders_are_found_alike(path: str) -> None:
    found = found_in_folder(_folder(path, ".dropbox", ".dropbox.cache"), _home(), SIGS)
    assert found == Found(path, "dropbox", "Dropbox", evidence="has .dropbox and .dropbox.cache")


@pytest.mark.parametrize(
    "path", ["Dropbox", "OneDrive", "Nextcloud", "MEGA", "pCloudDrive", "Sync", "ownCloud"]
)
def test_a_folder_named_like_a_provider_without_markers_is_not_found(path: str) -> None:
    assert found_in_folder(_folder(f"{HOME}/{path}", "Dropbox.txt"), _home(), SIGS) is None


def test_dropbox_needs_both_markers() -> None:
    # The home itself holds ~/.dropbox: one marker alone is not a Dropbox folder.
    assert found_in_folder(_folder(f"{HOME}/x", ".dropbox"), _home(), SIGS) is None
    assert found_in_folder(_folder(f"{HOME}/x", ".dropbox.cache"), _home(), SIGS) is None


def test_markers_are_matched_exactly_not_as_substrings() -> None:
    entries = ("my.stfolder", ".stfolder-old", "x.debris", ".sync_.db.bak", "DEBRIS")
    assert found_in_folder(_folder(f"{HOME}/x", *entries), _home(), SIGS) is None


@pytest.mark.parametrize(
    "path",
    [HOME, f"{HOME}/", "/home/bob/Sync", "/home/alicex/Sync", "/", "relative/Sync", ""],
)
def test_never_the_home_itself_nor_outside_it(path: str) -> None:
    assert found_in_folder(_folder(path, ".stfolder"), _home(), SIGS) is None


def test_a_folder_path_is_normalised() -> None:
    found = found_in_folder(_folder(f"{HOME}/a/../Sync/", ".stfolder"), _home(), SIGS)
    assert found is not None
    assert found.path == f"{HOME}/Sync"
    assert found_in_folder(_folder(f"{HOME}/../bob/Sync", ".stfolder"), _home(), SIGS) is None


def test_control_characters_in_entries_never_reach_the_evidence() -> None:
    found = found_in_folder(_folder(f"{HOME}/x", ".sync_\x1b[31m\n.db"), _home(), SIGS)
    assert found is not None
    assert found.evidence == "has .sync_*.db"


# --- markers enriched by configs ------------------------------------------------------------


def _info_json(**paths: str) -> dict[str, str]:
    data = {
        account: {"path": path, "host": 1234, "is_team": False} for account, path in paths.items()
    }
    return {".dropbox/info.json": json.dumps(data)}


@pytest.mark.parametrize("account", ["personal", "business"])
def test_dropbox_account_comes_from_info_json(account: str) -> None:
    home = _home(
        _info_json(personal=f"{HOME}/Dropbox (Personal)", business=f"{HOME}/Dropbox (School)")
    )
    path = f"{HOME}/Dropbox (Personal)" if account == "personal" else f"{HOME}/Dropbox (School)"
    found = found_in_folder(_folder(path, ".dropbox", ".dropbox.cache"), home, SIGS)
    assert found is not None
    assert (found.provider, found.account) == ("dropbox", account)
    assert found.evidence == (
        "has .dropbox and .dropbox.cache, "
        f"named in ~/.dropbox/info.json as the {account} Dropbox folder"
    )


def test_a_dropbox_folder_info_json_does_not_name_has_an_unknown_account() -> None:
    home = _home(_info_json(business=f"{HOME}/Dropbox (School)"))
    found = found_in_folder(_folder(f"{HOME}/Other", ".dropbox", ".dropbox.cache"), home, SIGS)
    assert found is not None
    assert found.account == ""


def test_nextcloud_folder_gets_its_server() -> None:
    home = _home({".config/Nextcloud/nextcloud.cfg": NEXTCLOUD_CFG})
    found = found_in_folder(_folder(f"{HOME}/Nextcloud", ".sync_0a1b2c.db"), home, SIGS)
    assert found is not None
    assert (found.provider, found.server) == ("nextcloud", "https://cloud.school.example")


def test_owncloud_is_told_from_nextcloud_by_its_config() -> None:
    cfg = NEXTCLOUD_CFG.replace("Nextcloud/", "ownCloud/")
    home = _home({".config/ownCloud/owncloud.cfg": cfg})
    found = found_in_folder(_folder(f"{HOME}/ownCloud", "._sync_0a1b2c.db"), home, SIGS)
    assert found is not None
    assert (found.provider, found.name) == ("owncloud", "ownCloud")
    assert found.server == "https://cloud.school.example"
    assert found.evidence == "has ._sync_*.db, named in ~/.config/ownCloud/owncloud.cfg"


def test_a_config_does_not_vouch_for_another_clients_markers() -> None:
    # Nextcloud's config names the folder, but Syncthing syncs it too: judged without the
    # config's server, so an approved Nextcloud server cannot let Syncthing through.
    home = _home({".config/Nextcloud/nextcloud.cfg": NEXTCLOUD_CFG})
    folder = _folder(f"{HOME}/Nextcloud", ".sync_0a1b2c.db", ".stfolder")
    found = found_in_folder(folder, home, SIGS)
    assert found is not None
    assert (found.provider, found.server) == ("nextcloud", "")


# --- homes -----------------------------------------------------------------------------------


def test_an_empty_home_has_no_sync_folders() -> None:
    assert found_in_home(_home(), SIGS) == []


def test_dropbox_folders_named_in_info_json() -> None:
    home = _home(_info_json(personal="/home/alice/Dropbox", business="~/Dropbox (School)"))
    assert found_in_home(home, SIGS) == [
        Found(
            f"{HOME}/Dropbox",
            "dropbox",
            "Dropbox",
            "personal",
            evidence="named in ~/.dropbox/info.json as the personal Dropbox folder",
        ),
        Found(
            f"{HOME}/Dropbox (School)",
            "dropbox",
            "Dropbox",
            "business",
            evidence="named in ~/.dropbox/info.json as the business Dropbox folder",
        ),
    ]


def test_config_paths_outside_the_home_are_ignored() -> None:
    home = _home(_info_json(personal="/etc", business=f"{HOME}/../bob/Dropbox"))
    assert found_in_home(home, SIGS) == []


def test_onedrive_sync_dir_from_its_config() -> None:
    config = '# sync_dir = "~/Ignored"\nsync_dir = "~/Work/OneDrive"\nmonitor_interval = "300"\n'
    home = _home({".config/onedrive/config": config}, frozenset({".config/onedrive", "OneDrive"}))
    # The config names its folder, so ~/OneDrive (the usual one) is not taken as well.
    assert found_in_home(home, SIGS) == [
        Found(
            f"{HOME}/Work/OneDrive",
            "onedrive",
            "OneDrive",
            "personal",
            evidence="named in ~/.config/onedrive/config",
        )
    ]


def test_onedrive_set_up_without_a_config_uses_its_usual_folder() -> None:
    home = _home(dirs=frozenset({".config/onedrive", "OneDrive"}))
    [found] = found_in_home(home, SIGS)
    assert (found.path, found.provider, found.account) == (f"{HOME}/OneDrive", "onedrive", "")
    assert found.evidence == (
        "OneDrive is set up in ~/.config/onedrive and ~/OneDrive is its usual folder"
    )


def test_a_onedrive_folder_without_the_client_is_not_found() -> None:
    assert found_in_home(_home(dirs=frozenset({"OneDrive", "MEGA"})), SIGS) == []


def test_mega_set_up_makes_its_usual_folders_sync_folders() -> None:
    dirs = frozenset({".local/share/data/Mega Limited", "MEGA"})
    [found] = found_in_home(_home(dirs=dirs), SIGS)
    assert (found.path, found.provider, found.name) == (f"{HOME}/MEGA", "mega", "MEGA")


def test_pcloud_drive_is_a_sync_folder_by_its_presence() -> None:
    [found] = found_in_home(_home(dirs=frozenset({"pCloudDrive"})), SIGS)
    assert (found.path, found.provider) == (f"{HOME}/pCloudDrive", "pcloud")
    assert found.evidence == "~/pCloudDrive is pCloud's own folder"


def test_nextcloud_folders_with_their_servers() -> None:
    cfg = NEXTCLOUD_CFG + "\n1\\url=http://other.example:8080/nc\n1\\Folders\\7\\localPath=~/Other"
    # QSettings writes [Accounts] once: keys after "version=2" still belong to it.
    found = found_in_home(_home({".config/Nextcloud/nextcloud.cfg": cfg}), SIGS)
    assert [(f.path, f.server) for f in found] == [
        (f"{HOME}/Nextcloud", "https://cloud.school.example"),
        (f"{HOME}/Other", "http://other.example:8080/nc"),
    ]


RCLONE_CONF = "[gdrive]\ntype = drive\nscope = drive\n\n[here]\ntype = local\n"


def test_rclone_without_a_mount_blocks_its_config_folder() -> None:
    [found] = found_in_home(_home({".config/rclone/rclone.conf": RCLONE_CONF}), SIGS)
    assert (found.path, found.provider) == (f"{HOME}/.config/rclone", "rclone")
    assert found.evidence == "~/.config/rclone/rclone.conf sets up remote cloud storage"


def test_rclone_with_only_local_remotes_is_not_found() -> None:
    conf = "[here]\ntype = local\n[short]\ntype = alias\nremote = here:/tmp\n"
    assert found_in_home(_home({".config/rclone/rclone.conf": conf}), SIGS) == []


def test_rclone_mounts_are_found_instead_of_its_config_folder() -> None:
    mounts = {f"{HOME}/gdrive": "fuse.rclone", "/mnt/elsewhere": "fuse.rclone", HOME: "ext4"}
    home = _home({".config/rclone/rclone.conf": RCLONE_CONF}, mounts=mounts)
    assert found_in_home(home, SIGS) == [
        Found(f"{HOME}/gdrive", "rclone", "rclone", evidence="mounted here by rclone (fuse.rclone)")
    ]


def test_a_mount_of_an_unknown_type_or_of_the_home_is_not_found() -> None:
    mounts = {f"{HOME}/usb": "vfat", HOME: "fuse.rclone", f"{HOME}/../x": "fuse.rclone"}
    assert found_in_home(_home(mounts=mounts), SIGS) == []


def test_each_path_is_reported_once() -> None:
    home = _home(
        {".config/onedrive/config": 'sync_dir = "~/pCloudDrive"\n'},
        frozenset({"pCloudDrive"}),
    )
    assert [f.path for f in found_in_home(home, SIGS)] == [f"{HOME}/pCloudDrive"]


def test_a_home_that_is_not_an_absolute_path_has_nothing() -> None:
    home = HomeFacts("home/alice", 1000, _info_json(personal="~/Dropbox"), frozenset(), {})
    assert found_in_home(home, SIGS) == []
