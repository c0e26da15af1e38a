"""Whether the rules allow a sync folder: a verdict, the rule that gave it and why.

Reasons are shown to staff as they are: plain words, the provider's name (from the
signatures) and never anything the folder's owner controls (its path, its server).
"""

from __future__ import annotations

from dataclasses import dataclass

from rules.cloud.allow import CloudDefault, CloudRule
from rules.cloud.facts import Found
from rules.cloud.servers import normal_server
from rules.model import RuleSet

RULE_DEFAULT = "default"
RULE_UNKNOWN_PROVIDER = "unknown-provider"
_ASK = "ask IT for an exception"


@dataclass(frozen=True)
class CloudVerdict:
    """Allowed or not, the rule id that decided ("default", "unknown-provider" or a
    `[[cloud]]` rule's id) and the reason in words for staff."""

    allowed: bool
    rule: str
    reason: str


def judge_folder(found: Found, rules: RuleSet, machine_id: str) -> CloudVerdict:
    """Judge a sync folder on this machine: the first `[[cloud]]` rule that matches allows
    it; else `[policy] cloud_default` decides. An unknown account or server never matches a
    rule that names one, and a provider the rules do not know is blocked."""
    what = f"{found.name} folder"
    if rules.signatures.get(found.provider) is None:
        reason = f"{what} blocked: guardd does not know this kind of cloud storage; {_ASK}"
        return CloudVerdict(False, RULE_UNKNOWN_PROVIDER, reason)
    mine = [r for r in rules.cloud if r.provider == found.provider and r.applies_to(machine_id)]
    for rule in mine:
        if _matches(rule, found):
            reason = f"{what} allowed: the school approves this cloud storage"
            return CloudVerdict(True, rule.rule_id, reason)
    if rules.policy.cloud_default is CloudDefault.ALLOW:
        reason = f"{what} allowed: cloud storage is allowed on this machine"
        return CloudVerdict(True, RULE_DEFAULT, reason)
    return CloudVerdict(False, RULE_DEFAULT, f"{what} blocked: {_why_not(found, mine)}; {_ASK}")


def _matches(rule: CloudRule, found: Found) -> bool:
    if rule.account and found.account != rule.account:
        return False
    return not rule.server or _server_ok(rule, found)


def _why_not(found: Found, rules: list[CloudRule]) -> str:
    # `rules` are this provider's rules for this machine, none of which matched.
    if rules and all(rule.server and not _server_ok(rule, found) for rule in rules):
        if not found.server:
            return "guardd could not tell which server it syncs with"
        return "it syncs with a server the school has not approved"
    if rules:  # some rule fits the server but not the account
        if not found.account:
            return "only approved accounts may be used here, and this account could not be told"
        return f"only approved accounts may be used here, and this is a {found.account} account"
    return "personal cloud storage is not allowed on school machines"


def _server_ok(rule: CloudRule, found: Found) -> bool:
    return normal_server(found.server) == rule.server
