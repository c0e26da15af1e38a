"""load_rules: one file or a folder of files, and every way reading them can fail."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from rules import MAX_RULES_FILE_BYTES, Policy, Problem, RulesError, load_rules


def _drive(serial: str, *, vendor_id: str = "0781", rule_id: str = "") -> str:
    extra = f'id = "{rule_id}"\n' if rule_id else ""
    return (
        f'[[drive]]\nserial = "{serial}"\nvendor_id = "{vendor_id}"\nproduct_id = "5581"\n{extra}'
    )


def _problems(path: Path) -> list[Problem]:
    with pytest.raises(RulesError) as caught:
        load_rules(path)
    return list(caught.value.problems)


def test_single_file(tmp_path: Path) -> None:
    path = tmp_path / "rules.toml"
    path.write_text("[policy]\nallow_non_storage = false\n" + _drive("A"))
    rules = load_rules(path)
    assert rules.sources == (str(path),)
    assert rules.policy == Policy(allow_non_storage=False)
    assert [(d.serial, d.source, d.line) for d in rules.drives] == [("A", str(path), 3)]


def test_file_need_not_end_in_toml(tmp_path: Path) -> None:
    path = tmp_path / "rules.conf"
    path.write_text(_drive("A"))
    assert len(load_rules(path).drives) == 1


def test_folder_is_merged_in_name_order(tmp_path: Path) -> None:
    (tmp_path / "20-staff.toml").write_text(_drive("B"))
    (tmp_path / "10-office.toml").write_text(_drive("A"))
    (tmp_path / "00-policy.toml").write_text("[policy]\nrequire_encryption = false\n")
    (tmp_path / "README").write_text("not rules")
    (tmp_path / ".30-draft.toml").write_text("this is not TOML")
    (tmp_path / "40-old.toml.bak").write_text("neither is this")
    rules = load_rules(tmp_path)
    assert rules.sources == tuple(
        str(tmp_path / name) for name in ("00-policy.toml", "10-office.toml", "20-staff.toml")
    )
    assert [d.serial for d in rules.drives] == ["A", "B"]
    assert rules.policy == Policy(require_encryption=False)


def test_folder_without_policy_uses_defaults(tmp_path: Path) -> None:
    (tmp_path / "a.toml").write_text(_drive("A"))
    assert load_rules(tmp_path).policy == Policy()


def test_two_policies_name_both_files(tmp_path: Path) -> None:
    (tmp_path / "a.toml").write_text("[policy]\nrequire_encryption = true\n")
    (tmp_path / "b.toml").write_text("# second\n[policy]\nrequire_encryption = false\n")
    (problem,) = _problems(tmp_path)
    assert (problem.source, problem.line) == (str(tmp_path / "b.toml"), 2)
    assert problem.message == (
        "a second [policy] table: only one rules file may set the policy "
        f"(it is already set at {tmp_path / 'a.toml'}:1)"
    )


def test_duplicates_across_files_name_both_places(tmp_path: Path) -> None:
    (tmp_path / "a.toml").write_text(_drive("A", rule_id="office") + _drive("A", vendor_id="abcd"))
    (tmp_path / "b.toml").write_text("\n" + _drive("A") + _drive("Z", rule_id="office"))
    problems = _problems(tmp_path)
    assert [(p.source, p.line) for p in problems] == [
        (str(tmp_path / "b.toml"), 2),
        (str(tmp_path / "b.toml"), 6),
    ]
    assert problems[0].message.endswith(f"already enrolled at {tmp_path / 'a.toml'}:1")
    assert problems[1].message.endswith(f"already used at {tmp_path / 'a.toml'}:1")


def test_problems_of_every_file_are_reported_in_file_order(tmp_path: Path) -> None:
    (tmp_path / "b.toml").write_text('[[drive]]\nserial = 1\nvendor_id = "0781"\n')
    (tmp_path / "a.toml").write_text("[oops\n")
    (tmp_path / "c.toml").write_bytes(b"# fine\n\xff\n")
    (tmp_path / "d.toml").write_text(_drive("OK"))
    problems = _problems(tmp_path)
    assert [(Path(p.source).name, p.line) for p in problems] == [
        ("a.toml", 1),
        ("b.toml", 1),
        ("b.toml", 2),
        ("c.toml", 2),
    ]


def test_missing_path(tmp_path: Path) -> None:
    (problem,) = _problems(tmp_path / "nowhere.toml")
    assert problem == Problem(
        str(tmp_path / "nowhere.toml"), 0, "cannot open the rules: No such file or directory"
    )


def test_empty_folder(tmp_path: Path) -> None:
    (tmp_path / ".hidden.toml").write_text(_drive("A"))
    (problem,) = _problems(tmp_path)
    assert problem == Problem(str(tmp_path), 0, "no rules files (*.toml) in this folder")


def test_folder_that_cannot_be_listed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(path: object) -> list[str]:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(os, "listdir", refuse)
    (problem,) = _problems(tmp_path)
    assert problem == Problem(str(tmp_path), 0, "cannot list this folder: Permission denied")


def test_unreadable_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "rules.toml"
    path.write_text(_drive("A"))

    def refuse(*args: object, **kwargs: object) -> int:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(os, "open", refuse)
    (problem,) = _problems(path)
    assert problem == Problem(str(path), 0, "cannot read this file: Permission denied")


def test_folder_named_like_a_rules_file(tmp_path: Path) -> None:
    (tmp_path / "a.toml").write_text(_drive("A"))
    (tmp_path / "b.toml").mkdir()
    (problem,) = _problems(tmp_path)
    assert problem == Problem(str(tmp_path / "b.toml"), 0, "not a regular file")


def test_fifo_is_refused_without_hanging(tmp_path: Path) -> None:
    fifo = tmp_path / "rules.toml"
    os.mkfifo(fifo)
    (problem,) = _problems(fifo)
    assert problem.message == "not a regular file"


def test_file_at_the_size_limit_is_read(tmp_path: Path) -> None:
    path = tmp_path / "rules.toml"
    body = _drive("A").encode()
    path.write_bytes(body + b"#" * (MAX_RULES_FILE_BYTES - len(body)))
    assert len(load_rules(path).drives) == 1


def test_file_over_the_size_limit_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "rules.toml"
    path.write_bytes(b"#" * (MAX_RULES_FILE_BYTES + 1))
    (problem,) = _problems(path)
    assert problem == Problem(str(path), 0, "file is too big (the limit is 4 MiB)")


def test_non_utf8_names_the_line_and_column_of_the_bad_byte(tmp_path: Path) -> None:
    path = tmp_path / "rules.toml"
    path.write_bytes(b'[[drive]]\nserial = "caf\xe9"\n')
    (problem,) = _problems(path)
    assert problem == Problem(str(path), 2, "not UTF-8 text: byte 0xe9 at column 14")


def test_non_utf8_on_the_first_line(tmp_path: Path) -> None:
    path = tmp_path / "rules.toml"
    path.write_bytes(b"\xff\xfe[\x00p\x00")  # a UTF-16 file, as some Windows editors save
    (problem,) = _problems(path)
    assert problem.line == 1
    assert problem.message.startswith("not UTF-8 text: byte 0xff")


def test_utf8_byte_order_mark_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "rules.toml"
    path.write_bytes(b"\xef\xbb\xbf" + _drive("A").encode())
    assert load_rules(path).drives[0].line == 1
