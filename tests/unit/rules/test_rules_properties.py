"""Whatever a rules file holds, loading it fails only with RulesError (never a traceback)."""

from __future__ import annotations

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


@settings(max_examples=300)
@given(_TOMLISH)
def test_tomlish_text_only_raises_rules_error(text: str) -> None:
    _parse(text)


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(st.binary() | _TOMLISH.map(lambda text: text.encode("utf-8", "surrogatepass")))
def test_arbitrary_bytes_in_a_file_only_raise_rules_error(data: bytes) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "rules.toml"
        path.write_bytes(data)
        for target in (path, Path(folder)):
            problems = _problems(lambda: load_rules(target))  # noqa: B023 - called at once
            assert problems is None or problems
