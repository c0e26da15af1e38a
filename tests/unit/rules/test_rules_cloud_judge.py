"""judge_folder: [[cloud]] allow rules, cloud_default, and reasons staff can read."""

from __future__ import annotations

from textwrap import dedent

import pytest

from rules import (
    RULE_DEFAULT,
    RULE_UNKNOWN_PROVIDER,
    CloudDefault,
    CloudRule,
    CloudVerdict,
    Found,
    Policy,
    RuleSet,
    judge_folder,
    parse_rules,
)

SCHOOL = "https://cloud.school.example"
ASK = "; ask IT for an exception"


def _rules(text: str) -> RuleSet:
    return parse_rules(dedent(text).lstrip("\n"), "rules.toml")


def _found(provider: str = "dropbox", name: str = "Dropbox", **extra: str) -> Found:
    return Found(f"/home/alice/{name}", provider, name, evidence="has markers", **extra)


NEXTCLOUD_RULES = _rules(f"""
    [[cloud]]
    id = "school-nextcloud"
    provider = "nextcloud"
    server = "{SCHOOL}/"
""")


def test_without_rules_every_sync_folder_is_blocked() -> None:
    verdict = judge_folder(_found(account="personal"), _rules(""), "staff-pc-1")
    assert verdict == CloudVerdict(
        False,
        RULE_DEFAULT,
        "Dropbox folder blocked: personal cloud storage is not allowed on school machines" + ASK,
    )


def test_cloud_default_allow_allows_what_no_rule_names() -> None:
    rules = _rules('[policy]\ncloud_default = "allow"\n')
    assert rules.policy.cloud_default is CloudDefault.ALLOW
    assert judge_folder(_found(), rules, "pc") == CloudVerdict(
        True, RULE_DEFAULT, "Dropbox folder allowed: cloud storage is allowed on this machine"
    )


def test_the_approved_nextcloud_server_is_allowed() -> None:
    for server in (SCHOOL, "https://CLOUD.school.example:443/"):
        found = _found("nextcloud", "Nextcloud", server=server)
        assert judge_folder(found, NEXTCLOUD_RULES, "pc") == CloudVerdict(
            True,
            "school-nextcloud",
            "Nextcloud folder allowed: the school approves this cloud storage",
        )


@pytest.mark.parametrize(
    ("server", "why"),
    [
        ("https://nextcloud.private.example", "it syncs with a server the school has not approved"),
        ("http://cloud.school.example", "it syncs with a server the school has not approved"),
        (f"{SCHOOL}:8443", "it syncs with a server the school has not approved"),
        (f"{SCHOOL}/other", "it syncs with a server the school has not approved"),
        ("", "guardd could not tell which server it syncs with"),
    ],
)
def test_another_nextcloud_server_is_blocked(server: str, why: str) -> None:
    verdict = judge_folder(_found("nextcloud", "Nextcloud", server=server), NEXTCLOUD_RULES, "pc")
    assert verdict == CloudVerdict(False, RULE_DEFAULT, f"Nextcloud folder blocked: {why}{ASK}")


def test_a_rule_for_one_provider_does_not_allow_another() -> None:
    found = _found("owncloud", "ownCloud", server=SCHOOL)
    assert not judge_folder(found, NEXTCLOUD_RULES, "pc").allowed


BUSINESS_ONEDRIVE = _rules("""
    [[cloud]]
    provider = "onedrive"
    account = "business"
""")


@pytest.mark.parametrize(
    ("account", "allowed", "reason"),
    [
        ("business", True, "OneDrive folder allowed: the school approves this cloud storage"),
        (
            "personal",
            False,
            "OneDrive folder blocked: only approved accounts may be used here, "
            "and this is a personal account" + ASK,
        ),
        (
            "",
            False,
            "OneDrive folder blocked: only approved accounts may be used here, "
            "and this account could not be told" + ASK,
        ),
    ],
)
def test_account_rules_fail_closed_on_unknown(account: str, allowed: bool, reason: str) -> None:
    verdict = judge_folder(_found("onedrive", "OneDrive", account=account), BUSINESS_ONEDRIVE, "pc")
    assert (verdict.allowed, verdict.reason) == (allowed, reason)
    assert verdict.rule == ("cloud:onedrive:business" if allowed else RULE_DEFAULT)


def test_dropbox_business_allowed_personal_blocked() -> None:
    rules = _rules('[[cloud]]\nprovider = "dropbox"\naccount = "business"\nid = "dbx-biz"\n')
    assert judge_folder(_found(account="business"), rules, "pc").rule == "dbx-biz"
    assert not judge_folder(_found(account="personal"), rules, "pc").allowed


def test_server_and_account_must_both_match() -> None:
    rules = _rules(f"""
        [[cloud]]
        provider = "nextcloud"
        server = "{SCHOOL}"
        account = "business"
    """)
    assert not judge_folder(_found("nextcloud", "Nextcloud", server=SCHOOL), rules, "pc").allowed
    found = _found("nextcloud", "Nextcloud", server=SCHOOL, account="business")
    assert judge_folder(found, rules, "pc").allowed


MACHINES = _rules("""
    [[cloud]]
    id = "labs-syncthing"
    provider = "syncthing"
    machines = ["Lab-PC-1", "lab-pc-2.school.example"]
""")


@pytest.mark.parametrize(
    ("machine", "allowed"),
    [
        ("lab-pc-1", True),
        ("LAB-PC-1", True),
        ("lab-pc-2.school.example", True),
        ("lab-pc-2", False),
        ("staff-pc-12", False),
        ("", False),
    ],
)
def test_machines_scope_a_rule(machine: str, allowed: bool) -> None:
    verdict = judge_folder(_found("syncthing", "Syncthing"), MACHINES, machine)
    assert verdict.allowed is allowed
    assert verdict.rule == ("labs-syncthing" if allowed else RULE_DEFAULT)


def test_first_matching_rule_gives_the_verdict() -> None:
    rules = _rules(f"""
        [[cloud]]
        id = "only-lab"
        provider = "nextcloud"
        machines = ["lab-1"]

        [[cloud]]
        id = "school-server"
        provider = "nextcloud"
        server = "{SCHOOL}"
    """)
    found = _found("nextcloud", "Nextcloud", server=SCHOOL)
    assert judge_folder(found, rules, "lab-1").rule == "only-lab"
    assert judge_folder(found, rules, "staff-1").rule == "school-server"
    other = _found("nextcloud", "Nextcloud", server="https://x.example")
    assert judge_folder(other, rules, "lab-1").rule == "only-lab"
    assert not judge_folder(other, rules, "staff-1").allowed


def test_a_provider_the_rules_do_not_know_is_blocked_even_when_the_default_allows() -> None:
    rules = RuleSet(Policy(cloud_default=CloudDefault.ALLOW), (), ("rules.toml",))
    verdict = judge_folder(_found("gone", "Gone"), rules, "pc")
    assert verdict == CloudVerdict(
        False,
        RULE_UNKNOWN_PROVIDER,
        "Gone folder blocked: guardd does not know this kind of cloud storage" + ASK,
    )


def test_a_provider_it_add_can_be_allowed() -> None:
    rules = _rules("""
        [[provider]]
        id = "box"
        name = "Box"
        markers = [".boxsync"]

        [[cloud]]
        provider = "box"
    """)
    verdict = judge_folder(_found("box", "Box"), rules, "pc")
    assert (verdict.allowed, verdict.rule) == (True, "cloud:box")


@pytest.mark.parametrize(
    "found",
    [
        _found(account="personal"),
        _found("nextcloud", "Nextcloud", server="https://evil.example/\x1b[2J"),
        Found("/home/alice/\x1b[31mbad\nname", "onedrive", "OneDrive", "", "", ""),
    ],
)
@pytest.mark.parametrize("rules", [_rules(""), NEXTCLOUD_RULES, BUSINESS_ONEDRIVE])
def test_reasons_are_plain_words_without_the_users_strings(found: Found, rules: RuleSet) -> None:
    reason = judge_folder(found, rules, "pc").reason
    assert reason.startswith(f"{found.name} folder ")
    assert reason.isprintable()
    assert "/home/alice" not in reason
    assert "evil" not in reason
    assert "default" not in reason
    assert "rule" not in reason


def test_a_hand_built_rule_set_checks_its_cloud_rules() -> None:
    rule = CloudRule("x", "nextcloud", server=SCHOOL)
    with pytest.raises(ValueError, match="unknown provider"):
        RuleSet(Policy(), (), (), (CloudRule("y", "nope"),))
    with pytest.raises(ValueError, match="duplicate rule id"):
        RuleSet(Policy(), (), (), (rule, rule))
    with pytest.raises(ValueError, match="normalised"):
        CloudRule("z", "nextcloud", server=SCHOOL + "/")
    with pytest.raises(ValueError, match="lowercase"):
        CloudRule("z", "nextcloud", machines=frozenset({"PC"}))
    with pytest.raises(ValueError, match="account"):
        CloudRule("z", "nextcloud", account="team")
