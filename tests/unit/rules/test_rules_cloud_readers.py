"""Config readers: each format, and hostile texts (never raise, never leave the home)."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rules.cloud.facts import MAX_CONFIG_TEXT
from rules.cloud.providers import READERS
from rules.cloud.readers import READER_FUNCTIONS, ConfigFolder, read_config

HOME = "/home/alice"
FILES = {
    "dropbox-info-json": ".dropbox/info.json",
    "onedrive-config": ".config/onedrive/config",
    "nextcloud-cfg": ".config/Nextcloud/nextcloud.cfg",
    "rclone-conf": ".config/rclone/rclone.conf",
}


def _read(reader: str, text: str) -> list[ConfigFolder]:
    return read_config(reader, text, HOME, FILES[reader])


def test_the_readers_data_may_name_are_exactly_those_in_code() -> None:
    assert set(READER_FUNCTIONS) == set(READERS) == set(FILES)


def test_an_unknown_reader_or_a_too_long_text_names_nothing() -> None:
    assert read_config("yaml", "sync_dir = x", HOME, "x") == []
    long = 'sync_dir = "~/OneDrive"\n' + "#" * MAX_CONFIG_TEXT
    assert _read("onedrive-config", long) == []


# --- Dropbox -------------------------------------------------------------------------------


def test_dropbox_info_json_personal_and_business() -> None:
    text = json.dumps(
        {
            "personal": {"path": "/home/alice/Dropbox", "host": 1, "is_team": False},
            "business": {"path": "/home/alice/Dropbox (School)", "host": 2, "is_team": True},
        }
    )
    assert [(f.path, f.account) for f in _read("dropbox-info-json", text)] == [
        (f"{HOME}/Dropbox", "personal"),
        (f"{HOME}/Dropbox (School)", "business"),
    ]


@pytest.mark.parametrize(
    "text",
    [
        "",
        "null",
        "[]",
        '{"personal": "/home/alice/Dropbox"}',
        '{"personal": {"path": 7}}',
        '{"personal": {"path": "/home/alice/Dropbox"',
        "[" * 60000,
        '{"personal": {"path": "' + "9" * 5000 + '"}}',
        '{"team": {"path": "/home/alice/Dropbox"}}',
    ],
)
def test_dropbox_info_json_that_is_not_what_it_should_be_names_nothing(text: str) -> None:
    assert _read("dropbox-info-json", text) == []


# --- OneDrive ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "path", "account"),
    [
        ("", f"{HOME}/OneDrive", "personal"),
        ('sync_dir = "~/Work Files"', f"{HOME}/Work Files", "personal"),
        ("sync_dir=/home/alice/od", f"{HOME}/od", "personal"),
        ('sync_dir = ""', f"{HOME}/OneDrive", "personal"),
        ('drive_id = "b!abc"\nsync_dir = "~/SharePoint"', f"{HOME}/SharePoint", "business"),
        ('azure_tenant_id = "school.example"', f"{HOME}/OneDrive", "business"),
        ('azure_tenant_id = ""', f"{HOME}/OneDrive", "personal"),
        ('# drive_id = "b!abc"', f"{HOME}/OneDrive", "personal"),
    ],
)
def test_onedrive_config(text: str, path: str, account: str) -> None:
    assert [(f.path, f.account) for f in _read("onedrive-config", text)] == [(path, account)]


@pytest.mark.parametrize("sync_dir", ["/", "/tmp/od", "~", "~bob/od", "~/../bob", "/home/alice"])
def test_onedrive_sync_dir_outside_the_home_names_nothing(sync_dir: str) -> None:
    assert _read("onedrive-config", f'sync_dir = "{sync_dir}"') == []


# --- Nextcloud / ownCloud ------------------------------------------------------------------


def test_nextcloud_cfg_several_accounts_and_folder_kinds() -> None:
    text = "\n".join(
        [
            "[Accounts]",
            "0\\url=https://cloud.school.example/",
            '0\\Folders\\1\\localPath="/home/alice/Nextcloud School/"',
            "0\\FoldersWithPlaceholders\\2\\localPath=/home/alice/VFS",
            "1\\url=HTTPS://Private.Example:443",
            "1\\Folders\\1\\localPath=/home/alice/Private",
            "2\\Folders\\1\\localPath=/home/alice/NoUrl",
            "3\\url=not a url",
            "3\\Folders\\1\\localPath=/home/alice/BadUrl",
            "4\\Folders\\1\\localPath=/etc",
            "[General]",
            "0\\Folders\\1\\localPath=/home/alice/NotAnAccount",
        ]
    )
    assert [(f.path, f.server) for f in _read("nextcloud-cfg", text)] == [
        (f"{HOME}/Nextcloud School", "https://cloud.school.example"),
        (f"{HOME}/VFS", "https://cloud.school.example"),
        (f"{HOME}/Private", "https://private.example"),
        (f"{HOME}/NoUrl", ""),
        (f"{HOME}/BadUrl", ""),
    ]


# --- rclone --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("[gdrive]\ntype = drive\n", True),
        ("[box]\ntype=box\n[loc]\ntype = local\n", True),
        ("[secret]\ntype = crypt\nremote = /home/alice/x\n", True),
        ("# Encrypted rclone configuration File\n\nRCLONE_ENCRYPT_V0:\nabcdef", True),
        ("[loc]\ntype = local\n[a]\ntype = alias\nremote = loc:/x\n", False),
        ("type = drive\n", False),
        ("", False),
    ],
)
def test_rclone_conf(text: str, named: bool) -> None:
    expected = [f"{HOME}/.config/rclone"] if named else []
    assert [f.path for f in _read("rclone-conf", text)] == expected


def test_rclone_conf_in_the_home_itself_names_nothing() -> None:
    # ~/.rclone.conf (older rclone): its folder is the home, which is never blocked.
    assert read_config("rclone-conf", "[g]\ntype = drive\n", HOME, ".rclone.conf") == []


# --- hostile texts -------------------------------------------------------------------------

_PIECES = st.sampled_from(
    [
        "[Accounts]",
        "[General]",
        "[gdrive]",
        "0\\url=https://cloud.example",
        "0\\Folders\\1\\localPath=",
        "type = drive",
        "sync_dir = ",
        '"',
        "~",
        "~/",
        "/",
        "..",
        "/home/alice",
        "/home/alice/..",
        "/home/bob",
        "//home/alice/x",
        "\x00",
        "\n",
        "\r\n",
        "\\",
        '{"personal": {"path": ',
        '{"business": {"path": "',
        '"}}',
        "}",
        "RCLONE_ENCRYPT_V0:",
    ]
)
_HOSTILE = st.lists(st.one_of(_PIECES, st.text(max_size=12)), max_size=40).map("".join)


@settings(max_examples=300, deadline=None)
@given(reader=st.sampled_from(READERS), text=_HOSTILE)
def test_readers_never_raise_and_never_leave_the_home(reader: str, text: str) -> None:
    for folder in _read(reader, text):
        assert folder.path.startswith(HOME + "/")
        assert "/../" not in folder.path + "/"
        assert "/./" not in folder.path + "/"
        assert "//" not in folder.path
        assert "\x00" not in folder.path
        assert not folder.path.endswith("/")
        assert folder.account in ("", "personal", "business")


@settings(max_examples=100, deadline=None)
@given(reader=st.sampled_from(READERS), data=st.binary(max_size=2000))
def test_readers_cope_with_binary_junk(reader: str, data: bytes) -> None:
    for folder in _read(reader, data.decode("utf-8", "surrogateescape")):
        assert folder.path.startswith(HOME + "/")


@settings(max_examples=100, deadline=None)
@given(path=st.text(max_size=60))
def test_any_dropbox_path_is_inside_the_home_or_dropped(path: str) -> None:
    text = json.dumps({"personal": {"path": path}, "business": {"path": HOME + "/" + path}})
    for folder in _read("dropbox-info-json", text):
        assert folder.path.startswith(HOME + "/")
        assert "/../" not in folder.path + "/"
