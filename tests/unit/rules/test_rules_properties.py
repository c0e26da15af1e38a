"""Whatever a rules file holds, loading it fails only with RulesError (never a traceback)."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rules import Problem, RulesError, RuleSet, load_rules, parse_rules

# Pieces of plausible rules files, so examples reach the semantic checks, not only syntax.
_FRAGMENTS = st.sampled_from(
    [
        "[policy]",
        "[[policy]]",
        "[[drive]]",
        "[drive]",
        "[drive.x]",
        "[[drive.x]]",
        '[ "drive" ]',
        "[other]",
        'serial = "SCHOOL-1"',
        "serial = 1",
        'serial = "\\u0000"',
        'vendor_id = "0781"',
        'vendor_id = "ABCD"',
        "vendor_id = 0x0781",
        'product_id = "5581"',
        'label = """',
        '"""',
        "'''",
        'id = "office"',
        'id = "Office"',
        'volume_uuids = ["c0ffee", 1]',
        "volume_uuids = [",
        "]",
        "require_encryption = false",
        'encrypted_types = ["crypto_LUKS"]',
        "encrypted_types = []",
        "allow_non_storage = 0",
        'drive = [{ serial = "A" }]',
        "policy.require_encryption = true",
        "# [[drive]]",
        "[[cloud]]",
        "[cloud]",
        "[[provider]]",
        'provider = "nextcloud"',
        'provider = "box"',
        'server = "https://cloud.school.example/"',
        'server = "https://[::1"',
        'account = "business"',
        'machines = ["pc-1", ""]',
        'id = "box"',
        'name = "Box"',
        'markers = [".box", "a/b"]',
        'match = "all"',
        'config = "rclone-conf"',
        'config_files = ["../x"]',
        'cloud_default = "allow"',
        "\ufeff",
        "",
    ]
)
_TOMLISH = st.lists(st.one_of(_FRAGMENTS, st.text(max_size=20)), max_size=30).map("\n".join)


def _problems(load: Callable[[], RuleSet]) -> tuple[Problem, ...] | None:
    """The problems `load` reports, or None when it succeeds; any other exception escapes."""
    try:
        load()
    except RulesError as error:
        return error.problems
    return None


def _parse(text: str) -> None:
    problems = _problems(lambda: parse_rules(text, "fuzz.toml"))
    last_line = text.count("\n") + 1
    assert problems is None or all(0 <= p.line <= last_line for p in problems)


@given(st.text())
def test_arbitrary_text_only_raises_rules_error(text: str) -> None:
    _parse(text)


@settings(max_examples=300, deadline=None)
@given(_TOMLISH)
def test_tomlish_text_only_raises_rules_error(text: str) -> None:
    _parse(text)


@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary() | _TOMLISH.map(lambda text: text.encode("utf-8", "surrogatepass")))
def test_arbitrary_bytes_in_a_file_only_raise_rules_error(data: bytes) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "rules.toml"
        path.write_bytes(data)
        for target in (path, Path(folder)):
            problems = _problems(lambda: load_rules(target))  # noqa: B023 - called at once
            assert problems is None or problems


# --- the line locator against generated, valid files ----------------------------------------

_PRINTABLE = st.text(min_size=1, max_size=40).filter(str.isprintable)


def _quote(text: str, style: int) -> str:
    """Write `text` as one of TOML's four string kinds (falling back to a basic string)."""
    basic = json.dumps(text, ensure_ascii=False)
    if style == 1 and "'" not in text:
        return f"'{text}'"
    if style == 2:
        return f'""{basic}""'  # a multi-line basic string on one line
    if style == 3 and "'''" not in text and not text.endswith("'"):
        return f"'''{text}'''"
    return basic


# Lines that may sit between tables without changing the rules.
_NOISE = ["", "# [[drive]] in a comment", "   # serial = 1", "\t"]
_POLICY = [
    "[policy]",
    "encrypted_types = [  # [[drive]]",
    '  "crypto_LUKS",',
    "  # [policy]",
    "  'BitLocker', ]",
]


@st.composite
def _rules_file(draw: st.DrawFn) -> tuple[str, list[int], int]:
    """A valid rules file with one product_id broken, each drive's header line and the
    broken line. Labels use every kind of TOML string; comments look like tables."""
    count = draw(st.integers(1, 8))
    broken = draw(st.integers(0, count - 1))
    lines: list[str] = list(_POLICY) if draw(st.booleans()) else []
    headers: list[int] = []
    broken_line = 0
    for index in range(count):
        lines += draw(st.lists(st.sampled_from(_NOISE), max_size=3))
        lines.append(draw(st.sampled_from(["[[drive]]", '[["drive"]]  # x', "  [[ drive ]]"])))
        headers.append(len(lines))
        lines.append(f"label = {_quote(draw(_PRINTABLE), draw(st.integers(0, 3)))}")
        lines.append(f'serial = "S{index}"')
        lines.append('vendor_id = "0781"')
        if index == broken:
            lines.append("product_id = 5581")
            broken_line = len(lines)
        else:
            lines.append('"product_id" = "5581"')
    return "\n".join(lines) + "\n", headers, broken_line


@settings(max_examples=200, deadline=None)
@given(_rules_file())
def test_locator_names_the_right_lines(generated: tuple[str, list[int], int]) -> None:
    text, headers, broken_line = generated
    problems = _problems(lambda: parse_rules(text, "gen.toml"))
    assert problems == (
        Problem("gen.toml", broken_line, "product_id must be a string, not integer"),
    )
    fixed = text.replace("product_id = 5581", 'product_id = "5581"')
    assert [drive.line for drive in parse_rules(fixed, "gen.toml").drives] == headers
