"""Load every sample rules file in tests/samples/rules/.

good/*.toml must load; a leading `# drives: N` comment gives how many drives they enrol.
bad/*.toml must fail with exactly the problems their leading comments list, in order, one
`# expect: LINE: substring` comment per problem.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from rules import RulesError, load_rules

SAMPLES = Path(__file__).parent / "rules"
_EXPECT = re.compile(r"^# expect: (\d+): (.+)$", re.MULTILINE)
_DRIVES = re.compile(r"^# drives: (\d+)$", re.MULTILINE)


def _files(kind: str) -> list[Path]:
    return sorted((SAMPLES / kind).glob("*.toml"))


def _comments(path: Path) -> str:
    # Bad files may hold bytes that are not UTF-8 after their (ASCII) comments.
    return path.read_bytes().decode("utf-8", "replace")


@pytest.mark.parametrize("path", _files("good"), ids=lambda path: path.name)
def test_good_rules_file_loads(path: Path) -> None:
    rules = load_rules(path)
    count = _DRIVES.search(_comments(path))
    assert count is not None, "good files say how many drives they enrol: '# drives: N'"
    assert len(rules.drives) == int(count.group(1))
    assert rules.sources == (str(path),)


@pytest.mark.parametrize("path", _files("bad"), ids=lambda path: path.name)
def test_bad_rules_file_reports_its_problems(path: Path) -> None:
    expected = [(int(line), text) for line, text in _EXPECT.findall(_comments(path))]
    assert expected, "bad files list their problems: '# expect: LINE: substring'"
    with pytest.raises(RulesError) as caught:
        load_rules(path)
    problems = caught.value.problems
    assert len(problems) == len(expected), str(caught.value)
    for problem, (line, text) in zip(problems, expected, strict=True):
        assert problem.source == str(path)
        assert (problem.line, text in problem.message) == (line, True), str(problem)


def test_there_are_enough_samples() -> None:
    assert len(_files("good")) >= 5
    assert len(_files("bad")) >= 12
