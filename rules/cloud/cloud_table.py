"""Read `[[cloud]]` allow rules from a rules file.

Whether a rule's provider exists is checked when the files are merged, because IT may define
a provider in another rules file.
"""

from __future__ import annotations

from typing import Any

from rules._checker import Checker
from rules._locate import KeyPath
from rules.cloud.allow import CloudRule, account_problem, default_cloud_rule_id, machine_problem
from rules.cloud.providers import provider_id_problem
from rules.cloud.servers import normal_server, server_problem
from rules.model import rule_id_problem

CLOUD_KEYS = ("id", "provider", "server", "account", "machines")
_REQUIRED = ("provider",)


def parse_cloud_rules(value: object, checker: Checker) -> list[tuple[CloudRule, int]]:
    """Every valid `[[cloud]]` rule with the line of its `provider` key."""
    message = "cloud rules must be listed as [[cloud]] tables, one per rule"
    tables = checker.tables(value, ("cloud",), message)
    rules = [parse_cloud_rule(table, index, checker) for index, table in enumerate(tables)]
    return [rule for rule in rules if rule is not None]


def parse_cloud_rule(
    table: dict[str, Any], index: int, checker: Checker
) -> tuple[CloudRule, int] | None:
    """One `[[cloud]]` table as a CloudRule and its provider's line, or None (problems in
    `checker`)."""
    path: KeyPath = ("cloud", index)
    before = len(checker.problems)
    checker.unknown_keys(table, path, CLOUD_KEYS)
    checker.required(table, path, _REQUIRED)
    provider = checker.string(table, path, "provider", provider_id_problem)
    server = checker.string(table, path, "server", server_problem)
    account = checker.string(table, path, "account", account_problem)
    machines = checker.strings(table, path, "machines", machine_problem)
    rule_id = checker.string(table, path, "id", rule_id_problem)
    if len(checker.problems) > before or provider is None:
        return None
    server = normal_server(server) if server else ""
    rule = CloudRule(
        rule_id=rule_id or default_cloud_rule_id(provider, account or "", server or ""),
        provider=provider,
        server=server or "",
        account=account or "",
        machines=None if machines is None else frozenset(m.lower() for m in machines),
        source=checker.source,
        line=checker.line(path),
    )
    return rule, checker.line((*path, "provider"))
