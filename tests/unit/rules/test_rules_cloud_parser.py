"""[[cloud]], [[provider]] and cloud_default in rules files: values and file:line problems."""

from __future__ import annotations

from pathlib import Path
from textwrap import dedent

import pytest

from rules import (
    CloudDefault,
    CloudRule,
    MarkerMatch,
    Provider,
    RulesError,
    default_signatures,
    load_rules,
    parse_rules,
)

SOURCE = "rules.toml"


def _text(block: str) -> str:
    return dedent(block).lstrip("\n")


def _problems(text: str) -> list[tuple[int, str]]:
    with pytest.raises(RulesError) as caught:
        parse_rules(_text(text), SOURCE)
    assert all(problem.source == SOURCE for problem in caught.value.problems)
    return [(problem.line, problem.message) for problem in caught.value.problems]


# --- valid files ---------------------------------------------------------------------------


def test_cloud_rules_with_every_key() -> None:
    rules = parse_rules(
        _text("""
            [policy]
            cloud_default = "block"

            [[cloud]]
            provider = "nextcloud"
            server = "https://Cloud.School.example:443/nc/"

            [[cloud]]
            id = "biz-onedrive"
            provider = "onedrive"
            account = "business"
            machines = ["Staff-PC-12", "staff-pc-13"]
        """),
        SOURCE,
    )
    assert rules.policy.cloud_default is CloudDefault.BLOCK
    assert rules.cloud == (
        CloudRule(
            "cloud:nextcloud@https://cloud.school.example/nc",
            "nextcloud",
            server="https://cloud.school.example/nc",
            source=SOURCE,
            line=4,
        ),
        CloudRule(
            "biz-onedrive",
            "onedrive",
            account="business",
            machines=frozenset({"staff-pc-12", "staff-pc-13"}),
            source=SOURCE,
            line=8,
        ),
    )


def test_without_cloud_tables_the_packaged_signatures_are_used() -> None:
    rules = parse_rules("", SOURCE)
    assert rules.cloud == ()
    assert rules.policy.cloud_default is CloudDefault.BLOCK
    assert rules.signatures == default_signatures()


def test_a_provider_table_adds_a_provider_after_the_packaged_ones() -> None:
    rules = parse_rules(
        _text("""
            [[provider]]
            id = "box"
            name = "Box"
            markers = [".boxsync", "box_*.db"]
            match = "all"
            home_folders = ["Box"]
            mount_types = ["fuse.box"]
        """),
        SOURCE,
    )
    box = rules.signatures.get("box")
    assert box == Provider(
        "box",
        "Box",
        markers=(".boxsync", "box_*.db"),
        match=MarkerMatch.ALL,
        home_folders=("Box",),
        mount_types=("fuse.box",),
        source=SOURCE,
        line=1,
    )
    assert rules.signatures.providers[-1] is box
    assert rules.signatures.ids() == default_signatures().ids() | {"box"}
    assert "Box" in rules.signatures.home_dirs()


def test_a_provider_table_with_a_packaged_id_replaces_it_in_place() -> None:
    rules = parse_rules(
        _text("""
            [[provider]]
            id = "syncthing"
            name = "Syncthing (school)"
            markers = [".stfolder", ".stignore"]
        """),
        SOURCE,
    )
    ids = [p.provider_id for p in rules.signatures.providers]
    assert ids == [p.provider_id for p in default_signatures().providers]
    replaced = rules.signatures.get("syncthing")
    assert replaced is not None
    assert replaced.markers == (".stfolder", ".stignore")


def test_config_readers_can_be_named_by_it() -> None:
    rules = parse_rules(
        _text("""
            [[provider]]
            id = "nextcloud-branded"
            name = "School Cloud"
            markers = [".sync_*.db"]
            config = "nextcloud-cfg"
            config_files = [".config/SchoolCloud/schoolcloud.cfg"]
        """),
        SOURCE,
    )
    assert ".config/SchoolCloud/schoolcloud.cfg" in rules.signatures.home_files()


def test_providers_and_rules_from_several_files_merge(tmp_path: Path) -> None:
    (tmp_path / "10-providers.toml").write_text(
        '[[provider]]\nid = "box"\nname = "Box"\nmarkers = [".boxsync"]\n'
    )
    (tmp_path / "20-cloud.toml").write_text('[[cloud]]\nprovider = "box"\n')
    rules = load_rules(tmp_path)
    assert [rule.provider for rule in rules.cloud] == ["box"]
    assert rules.cloud[0].source == str(tmp_path / "20-cloud.toml")


# --- problems ------------------------------------------------------------------------------


def test_cloud_rule_problems_name_their_lines() -> None:
    assert _problems("""
        [policy]
        cloud_default = "deny"

        [[cloud]]
        provider = "nextcloud"
        server = "cloud.school.example"
        acount = "business"

        [[cloud]]
        provider = 7
        machines = ["pc 1"]

        [[cloud]]
        server = "https://x.example"
        account = "school"
        id = "Bad Id"
    """) == [
        (2, "cloud_default must be 'block' or 'allow', not 'deny'"),
        (
            6,
            'server must be a web address like "https://cloud.school.example" '
            "(http or https, with a host name; got 'cloud.school.example')",
        ),
        (7, "unknown key 'acount' in [[cloud]]; did you mean 'account'?"),
        (10, "provider must be a string, not integer"),
        (
            11,
            'machines entries must be host names like "staff-pc-12" '
            "(letters, digits, '.', '_' and '-'; got 'pc 1')",
        ),
        (13, "cloud is missing required key 'provider'"),
        (15, "account must be 'personal' or 'business', not 'school'"),
        (16, "id must be 1 to 64 characters from a-z, 0-9, '.', '_' and '-' (got 'Bad Id')"),
    ]


def test_an_unknown_provider_is_named_on_its_line() -> None:
    assert _problems("""
        [[cloud]]
        id = "a"
        provider = "nextclod"

        [[cloud]]
        provider = "googledrive"
    """) == [
        (3, "unknown provider 'nextclod' in [[cloud]]; did you mean 'nextcloud'?"),
        (
            6,
            "unknown provider 'googledrive' in [[cloud]]; known: dropbox, mega, nextcloud, "
            "onedrive, owncloud, pcloud, rclone, syncthing",
        ),
    ]


def test_duplicate_cloud_rule_ids() -> None:
    assert _problems("""
        [[drive]]
        id = "shared"
        serial = "S"
        vendor_id = "0781"
        product_id = "5581"

        [[cloud]]
        provider = "syncthing"

        [[cloud]]
        provider = "syncthing"
        machines = ["lab-1"]

        [[cloud]]
        id = "shared"
        provider = "dropbox"
    """) == [
        (
            10,
            "duplicate rule id 'cloud:syncthing': already used at line 7; "
            "give each [[cloud]] rule its own id",
        ),
        (14, "duplicate rule id 'shared': already used at line 1"),
    ]


def test_cloud_must_be_an_array_of_tables() -> None:
    assert _problems("""
        [cloud]
        provider = "dropbox"
    """) == [(1, "cloud rules must be listed as [[cloud]] tables, one per rule")]


def test_provider_problems_name_their_lines() -> None:
    assert _problems("""
        [[provider]]
        id = "Box"
        name = ""
        markers = ["a/b", ".ok"]
        match = "some"
        colour = "blue"

        [[provider]]
        id = "box2"
        name = "Box"
        home_folders = ["../etc"]
        config = "yaml"
        mount_types = ["fuse box"]

        [[provider]]
        id = "nothing"
        name = "Nothing"

        [[provider]]
        id = "half"
        name = "Half"
        config = "rclone-conf"
        client_dirs = [".half"]
    """) == [
        (2, "provider ids are 1 to 64 characters from a-z, 0-9, '.', '_' and '-' (got 'Box')"),
        (3, "name must not be empty"),
        (4, "markers are names of things inside a folder, not paths (got 'a/b')"),
        (5, "match must be 'any' or 'all', not 'some'"),
        (6, "unknown key 'colour' in [[provider]]"),
        (
            11,
            'home paths are relative to the home, like ".config/rclone/rclone.conf", '
            "with no '..' or empty parts (got '../etc')",
        ),
        (
            12,
            "config must be one of 'dropbox-info-json', 'onedrive-config', 'nextcloud-cfg', "
            "'rclone-conf', not 'yaml'",
        ),
        (13, "mount_types entries must be filesystem types like \"fuse.rclone\" (got 'fuse box')"),
        (
            15,
            "provider 'nothing' has nothing to recognise it by: give markers, home_folders, "
            "config with config_files, client_dirs with default_folders, or mount_types",
        ),
        (19, "provider 'half': config and config_files go together"),
    ]


def test_duplicate_provider_ids_in_a_file_and_across_files(tmp_path: Path) -> None:
    assert _problems("""
        [[provider]]
        id = "box"
        name = "Box"
        markers = [".boxsync"]

        [[provider]]
        id = "box"
        name = "Box again"
        markers = [".box"]
    """) == [(7, "duplicate provider id 'box': already used at line 1")]
    first, second = tmp_path / "a.toml", tmp_path / "b.toml"
    first.write_text('[[provider]]\nid = "box"\nname = "Box"\nmarkers = [".boxsync"]\n')
    second.write_text('\n[[provider]]\nid = "box"\nname = "Box"\nmarkers = [".box"]\n')
    with pytest.raises(RulesError) as caught:
        load_rules(tmp_path)
    assert [str(problem) for problem in caught.value.problems] == [
        f"{second}:2: duplicate provider id 'box': already defined at {first}:1"
    ]


def test_an_unknown_provider_defined_nowhere_when_files_merge(tmp_path: Path) -> None:
    (tmp_path / "a.toml").write_text('# school cloud\n[[cloud]]\nprovider = "box"\n')
    with pytest.raises(RulesError) as caught:
        load_rules(tmp_path)
    [problem] = caught.value.problems
    assert (problem.source, problem.line) == (str(tmp_path / "a.toml"), 3)
    assert problem.message.startswith("unknown provider 'box' in [[cloud]]")
