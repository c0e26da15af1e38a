"""Problem/RulesError formatting, and the invariants the model enforces on its own."""

from __future__ import annotations

import pickle

import pytest

from rules import Drive, Policy, Problem, RulesError, RuleSet
from rules.model import default_rule_id, duplicate_problems, show


def _drive(**overrides: object) -> Drive:
    fields: dict[str, object] = {
        "rule_id": "office-12",
        "serial": "SCHOOL-000123",
        "vendor_id": "0781",
        "product_id": "5581",
        "label": "Office stick 12",
        "volume_uuids": frozenset(),
        "source": "rules.toml",
        "line": 3,
    }
    fields.update(overrides)
    return Drive(**fields)  # type: ignore[arg-type]


def test_problem_str_names_source_and_line() -> None:
    assert str(Problem("/etc/guardd/rules.toml", 7, "bad")) == "/etc/guardd/rules.toml:7: bad"


def test_rules_error_carries_all_problems_one_per_line() -> None:
    problems = [Problem("a.toml", 1, "one"), Problem("a.toml", 2, "two")]
    error = RulesError(problems)
    assert error.problems == tuple(problems)
    assert str(error) == "a.toml:1: one\na.toml:2: two"


def test_rules_error_needs_a_problem() -> None:
    with pytest.raises(ValueError, match="at least one"):
        RulesError([])


def test_rules_error_survives_pickling() -> None:
    error = RulesError([Problem("a.toml", 1, "one")])
    copy = pickle.loads(pickle.dumps(error))  # noqa: S301 - our own bytes
    assert copy.problems == error.problems
    assert str(copy) == str(error)


def test_policy_defaults() -> None:
    policy = Policy()
    assert policy.require_encryption is True
    assert policy.encrypted_types == frozenset({"crypto_LUKS", "BitLocker"})
    assert policy.allow_non_storage is True


@pytest.mark.parametrize("types", [frozenset(), frozenset({"has space"}), frozenset({""})])
def test_policy_rejects_bad_encrypted_types(types: frozenset[str]) -> None:
    with pytest.raises(ValueError, match="encrypted_types"):
        Policy(encrypted_types=types)


def test_drive_accepts_valid_fields_and_has_a_key() -> None:
    drive = _drive(volume_uuids=frozenset({"c0ffee00-1234"}))
    assert drive.key == ("SCHOOL-000123", "0781", "5581")


def test_drive_accepts_its_default_rule_id() -> None:
    rule_id = default_rule_id("0781", "5581", "Has Spaces:And:Colons")
    assert rule_id == "drive:0781:5581:Has Spaces:And:Colons"
    assert _drive(rule_id=rule_id, serial="Has Spaces:And:Colons").rule_id == rule_id


def test_drive_default_label_may_be_a_long_serial() -> None:
    serial = "S" * 126
    assert _drive(serial=serial, label=serial).label == serial


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"serial": ""}, "serial must not be empty"),
        ({"serial": "S" * 127}, "at most 126"),
        ({"serial": "bad\x07"}, r"U\+0007"),
        ({"vendor_id": "781"}, "vendor_id must be exactly 4 hex digits"),
        ({"product_id": "55g1"}, "product_id must be exactly 4 hex digits"),
        ({"vendor_id": "ABCD"}, "vendor_id must be stored lowercase"),
        ({"rule_id": "Office 12"}, "id must be 1 to 64"),
        ({"rule_id": "drive:0781:5581:OTHER"}, "id must be 1 to 64"),
        ({"label": ""}, "label must not be empty"),
        ({"label": "L" * 81}, "at most 80"),
        ({"volume_uuids": frozenset({"not-a-uuid"})}, "volume_uuids entries"),
        ({"volume_uuids": frozenset({"C0FFEE"})}, "stored lowercase"),
        ({"line": -1}, "line must not be negative"),
    ],
)
def test_drive_rejects_bad_fields(overrides: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        _drive(**overrides)


def test_ruleset_rejects_duplicates() -> None:
    first = _drive()
    again = _drive(rule_id="office-13", line=9)
    with pytest.raises(ValueError, match="duplicate drive"):
        RuleSet(Policy(), (first, again), ("rules.toml",))
    same_id = _drive(serial="OTHER", line=9)
    with pytest.raises(ValueError, match="duplicate rule id 'office-12'"):
        RuleSet(Policy(), (first, same_id), ("rules.toml",))


def test_ruleset_allows_one_serial_under_several_makes() -> None:
    first = _drive()
    other_make = _drive(rule_id="office-13", vendor_id="abcd", line=9)
    rules = RuleSet(Policy(), (first, other_make), ("rules.toml",))
    assert len(rules.drives) == 2


def test_duplicate_problems_name_both_places() -> None:
    first = _drive(source="a.toml", line=2)
    same_file = _drive(rule_id="x", source="a.toml", line=9)
    other_file = _drive(rule_id="y", source="b.toml", line=4)
    problems = duplicate_problems([first, same_file, other_file])
    assert [(p.source, p.line) for p in problems] == [("a.toml", 9), ("b.toml", 4)]
    assert problems[0].message.endswith("already enrolled at line 2")
    assert problems[1].message.endswith("already enrolled at a.toml:2")


def test_show_escapes_and_shortens() -> None:
    assert show("a\x1b[31m") == "'a\\x1b[31m'"
    assert show("x" * 50) == repr("x" * 40) + "..."
