"""The provider signatures shipped with guardd (rules/cloud/providers.toml, package data)."""

from __future__ import annotations

import functools
from importlib import resources

from rules._checker import Checker, decode_toml
from rules._locate import LineLocator
from rules.cloud.provider_table import parse_providers
from rules.cloud.providers import Signatures
from rules.errors import Problem, RulesError

PACKAGED_PROVIDERS = "providers.toml"


@functools.cache
def default_signatures() -> Signatures:
    """The packaged signatures; RulesError if the installed file is missing or broken."""
    source = f"rules/cloud/{PACKAGED_PROVIDERS}"
    try:
        text = resources.files("rules.cloud").joinpath(PACKAGED_PROVIDERS).read_text("utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise RulesError([Problem(source, 0, f"cannot read guardd's providers: {error}")]) from None
    return signatures_from_text(text, source)


def signatures_from_text(text: str, source: str) -> Signatures:
    """Signatures from a providers file holding only `[[provider]]` tables; RulesError if not."""
    document = decode_toml(text, source)
    if isinstance(document, Problem):
        raise RulesError([document])
    checker = Checker(source, LineLocator(text))
    for key in document:
        if key != "provider":
            checker.add((key,), f"a providers file has only [[provider]] tables, not {key!r}")
    providers = parse_providers(document.get("provider", []), checker)
    if checker.problems:
        raise RulesError(sorted(checker.problems, key=lambda problem: problem.line))
    return Signatures(tuple(providers))
