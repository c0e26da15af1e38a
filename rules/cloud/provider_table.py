"""Read `[[provider]]` tables (rules files, and the packaged providers.toml) into Providers."""

from __future__ import annotations

from typing import Any

from rules._checker import Checker
from rules._locate import KeyPath
from rules._text import show
from rules.cloud.providers import (
    MarkerMatch,
    Provider,
    home_path_problem,
    marker_problem,
    mount_type_problem,
    provider_id_problem,
    provider_name_problem,
    reader_problem,
)

PROVIDER_KEYS = (
    "id",
    "name",
    "markers",
    "match",
    "home_folders",
    "config",
    "config_files",
    "client_dirs",
    "default_folders",
    "mount_types",
)
_REQUIRED = ("id", "name")
_LISTS = {
    "markers": marker_problem,
    "home_folders": home_path_problem,
    "config_files": home_path_problem,
    "client_dirs": home_path_problem,
    "default_folders": home_path_problem,
    "mount_types": mount_type_problem,
}


def parse_providers(value: object, checker: Checker) -> list[Provider]:
    """Every valid provider of a `provider` array of tables; problems go to `checker`."""
    message = "providers must be listed as [[provider]] tables, one per provider"
    tables = checker.tables(value, ("provider",), message)
    providers: list[Provider] = []
    seen: dict[str, int] = {}
    for index, table in enumerate(tables):
        provider = parse_provider(table, index, checker)
        if provider is None:
            continue
        first = seen.setdefault(provider.provider_id, provider.line)
        if first != provider.line:
            checker.add(
                ("provider", index, "id"),
                f"duplicate provider id {show(provider.provider_id)}: already used at line {first}",
            )
            continue
        providers.append(provider)
    return providers


def parse_provider(table: dict[str, Any], index: int, checker: Checker) -> Provider | None:
    """One `[[provider]]` table as a Provider, or None (with its problems in `checker`)."""
    path: KeyPath = ("provider", index)
    before = len(checker.problems)
    checker.unknown_keys(table, path, PROVIDER_KEYS)
    checker.required(table, path, _REQUIRED)
    provider_id = checker.string(table, path, "id", provider_id_problem)
    name = checker.string(table, path, "name", provider_name_problem)
    match = checker.string(table, path, "match", _match_problem)
    config = checker.string(table, path, "config", reader_problem)
    lists = {key: checker.string_list(table, path, key, check) for key, check in _LISTS.items()}
    if len(checker.problems) > before or provider_id is None or name is None:
        return None
    try:
        return Provider(
            provider_id=provider_id,
            name=name,
            match=MarkerMatch(match or MarkerMatch.ANY),
            config=config or "",
            source=checker.source,
            line=checker.line(path),
            markers=lists["markers"] or (),
            home_folders=lists["home_folders"] or (),
            config_files=lists["config_files"] or (),
            client_dirs=lists["client_dirs"] or (),
            default_folders=lists["default_folders"] or (),
            mount_types=lists["mount_types"] or (),
        )
    except ValueError as error:  # the checks that need several keys at once
        checker.add(path, str(error))
        return None


def _match_problem(value: str) -> str | None:
    if value in tuple(MarkerMatch):
        return None
    return f"match must be 'any' or 'all', not {show(value)}"
