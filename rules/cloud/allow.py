"""`[[cloud]]` allow rules and the `[policy] cloud_default`, as frozen values."""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from rules._text import show
from rules.cloud.providers import provider_id_problem
from rules.cloud.servers import normal_server

ACCOUNTS = ("personal", "business")
MAX_MACHINE_ID_LEN = 253  # a fully qualified host name
_MACHINE_ID = re.compile(r"[A-Za-z0-9._-]{1,253}")


class CloudDefault(StrEnum):
    """What happens to a sync folder no `[[cloud]]` rule allows."""

    BLOCK = "block"
    ALLOW = "allow"


def account_problem(value: str) -> str | None:
    """Check an account kind."""
    if value in ACCOUNTS:
        return None
    return f"account must be 'personal' or 'business', not {show(value)}"


def machine_problem(value: str) -> str | None:
    """Check a machine id (its host name)."""
    if _MACHINE_ID.fullmatch(value):
        return None
    return (
        'machines entries must be host names like "staff-pc-12" '
        f"(letters, digits, '.', '_' and '-'; got {show(value)})"
    )


def default_cloud_rule_id(provider: str, account: str, server: str) -> str:
    """The id a `[[cloud]]` rule gets when the rules file gives none."""
    rule_id = f"cloud:{provider}"
    if account:
        rule_id += f":{account}"
    if server:
        rule_id += f"@{server}"
    return rule_id


@dataclass(frozen=True)
class CloudRule:
    """One allow rule: folders of `provider` are allowed, only with this `server` and this
    `account` when they are given, only on `machines` when given (None: every machine).

    `server` is stored normalised; `machines` lowercase.
    """

    rule_id: str
    provider: str
    server: str = ""
    account: str = ""
    machines: frozenset[str] | None = None
    source: str = ""
    line: int = 0

    def __post_init__(self) -> None:
        for message in self._problems():
            raise ValueError(message)

    def _problems(self) -> list[str]:
        messages = [provider_id_problem(self.provider)]
        if self.server and normal_server(self.server) != self.server:
            messages.append(f"server must be stored normalised (got {show(self.server)})")
        if self.account:
            messages.append(account_problem(self.account))
        if self.machines is not None:
            if not self.machines:
                messages.append("machines must name at least one machine")
            messages += [machine_problem(machine) for machine in sorted(self.machines)]
            if any(machine != machine.lower() for machine in self.machines):
                messages.append("machines must be stored lowercase")
        return [message for message in messages if message is not None]

    def applies_to(self, machine_id: str) -> bool:
        """True when this rule covers the machine (machine ids compare case-insensitively)."""
        return self.machines is None or machine_id.lower() in self.machines
