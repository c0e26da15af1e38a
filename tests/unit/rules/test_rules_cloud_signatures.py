"""Provider signatures: the packaged providers file, Provider checks and Signatures."""

from __future__ import annotations

from importlib import resources

import pytest

from rules import MarkerMatch, Provider, RulesError, Signatures, default_signatures
from rules.cloud.defaults import PACKAGED_PROVIDERS, signatures_from_text


def test_the_packaged_providers_file_is_package_data() -> None:
    assert resources.files("rules.cloud").joinpath(PACKAGED_PROVIDERS).is_file()


def test_the_packaged_providers_cover_the_known_clients() -> None:
    sigs = default_signatures()
    names = {p.provider_id: p.name for p in sigs.providers}
    assert names == {
        "dropbox": "Dropbox",
        "onedrive": "OneDrive",
        "nextcloud": "Nextcloud",
        "owncloud": "ownCloud",
        "mega": "MEGA",
        "pcloud": "pCloud",
        "rclone": "rclone",
        "syncthing": "Syncthing",
    }
    assert all(p.source == "" or p.source.endswith("providers.toml") for p in sigs.providers)


def test_what_the_daemon_reads_in_each_home() -> None:
    sigs = default_signatures()
    assert sigs.home_files() == {
        ".dropbox/info.json",
        ".config/onedrive/config",
        ".config/Nextcloud/nextcloud.cfg",
        ".config/ownCloud/owncloud.cfg",
        ".config/rclone/rclone.conf",
    }
    assert sigs.home_dirs() == {
        ".config/onedrive",
        "OneDrive",
        ".local/share/data/Mega Limited",
        "MEGA",
        "MEGAsync",
        "pCloudDrive",
    }
    rclone = sigs.mount_provider("fuse.rclone")
    assert rclone is not None
    assert rclone.provider_id == "rclone"
    assert sigs.mount_provider("ext4") is None


def test_marker_hits_any_and_all() -> None:
    any_of = Provider("x", "X", markers=(".a", ".b*"))
    all_of = Provider("y", "Y", markers=(".a", ".b*"), match=MarkerMatch.ALL)
    assert any_of.marker_hits(frozenset({".a"})) == (".a",)
    assert any_of.marker_hits(frozenset({".bee", "z"})) == (".b*",)
    assert all_of.marker_hits(frozenset({".a"})) == ()
    assert all_of.marker_hits(frozenset({".bee", ".a"})) == (".a", ".b*")
    assert any_of.marker_hits(frozenset()) == ()


def test_glob_markers_match_whole_names_only() -> None:
    provider = Provider("x", "X", markers=(".sync_*.db", "[.]stfolder"))
    assert provider.marker_hits(frozenset({".sync_1.db"})) == (".sync_*.db",)
    assert provider.marker_hits(frozenset({"a.sync_1.db", ".sync_1.db.bak"})) == ()
    assert provider.marker_hits(frozenset({".stfolder"})) == ("[.]stfolder",)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"provider_id": "Dropbox"}, "provider ids are"),
        ({"name": "\x1b[2J"}, "control or non-printable"),
        ({"markers": ("..",)}, "not paths"),
        ({"home_folders": ("/etc",)}, "relative to the home"),
        ({"config_files": ("a//b",)}, "relative to the home"),
        ({"config": "ini", "config_files": ("a",)}, "config must be one of"),
        ({"config": "rclone-conf"}, "config and config_files go together"),
        ({"default_folders": ("MEGA",)}, "default_folders and client_dirs go together"),
        ({"markers": (), "home_folders": ()}, "nothing to recognise it by"),
    ],
)
def test_a_provider_checks_its_fields(fields: dict[str, object], message: str) -> None:
    values: dict[str, object] = {"provider_id": "x", "name": "X", "markers": (".x",)}
    values.update(fields)
    with pytest.raises(ValueError, match=message):
        Provider(**values)  # type: ignore[arg-type]


def test_signatures_hold_each_id_once() -> None:
    one = Provider("x", "X", markers=(".x",))
    with pytest.raises(ValueError, match="used twice"):
        Signatures((one, Provider("x", "Other", markers=(".o",))))


def test_with_providers_adds_and_replaces() -> None:
    base = Signatures((Provider("a", "A", markers=(".a",)), Provider("b", "B", markers=(".b",))))
    new_b = Provider("b", "New B", markers=(".nb",))
    c = Provider("c", "C", home_folders=("C",))
    merged = base.with_providers([c, new_b])
    assert [p.name for p in merged.providers] == ["A", "New B", "C"]
    assert base.get("b") is not None
    assert base.get("b") != new_b  # unchanged


def test_a_broken_providers_file_is_a_rules_error() -> None:
    with pytest.raises(RulesError) as caught:
        signatures_from_text('[[provider]]\nid = "x"\n\n[other]\n', "providers.toml")
    assert [str(p) for p in caught.value.problems] == [
        "providers.toml:1: provider is missing required key 'name'",
        "providers.toml:4: a providers file has only [[provider]] tables, not 'other'",
    ]
    with pytest.raises(RulesError, match="not valid TOML"):
        signatures_from_text("[[provider]\n", "providers.toml")


def test_marker_entries_keeps_only_what_some_marker_matches() -> None:
    sigs = default_signatures()
    entries = frozenset({"notes.odt", ".stfolder", ".sync_1.db", ".dropbox", "Dropbox"})
    assert sigs.marker_entries(entries) == {".stfolder", ".sync_1.db", ".dropbox"}
    assert Signatures((Provider("p", "P", home_folders=("P",)),)).marker_entries(entries) == set()
