"""A sync folder as guardd knows it: what was found, whose it is, and where it stands."""

from __future__ import annotations

from dataclasses import dataclass

from guardd.audit import JsonValue
from rules import Found


class FolderState:
    """Where a sync folder stands (strings on the wire and in the audit trail)."""

    BLOCKED = "blocked"
    ALLOWED = "allowed"
    APPROVED = "approved"
    FAILED = "failed"  # it should be blocked, but the block could not be carried out


@dataclass(frozen=True)
class CloudFolder:
    """One sync folder and guardd's decision about it."""

    found: Found
    owner_uid: int
    state: str
    rule: str
    reason: str
    until: float | None = None
    problem: str = ""
    dev: int = 0  # the folder itself (0, 0 for a sync mount): what a request is bound to
    ino: int = 0

    def view(self) -> dict[str, JsonValue]:
        """The folder as the CLIs and the tray show it."""
        return {
            **found_json(self.found),
            "owner_uid": self.owner_uid,
            "state": self.state,
            "rule": self.rule,
            "reason": self.reason,
            "until": self.until,
            "problem": self.problem,
        }


def found_json(found: Found) -> dict[str, str]:
    """A Found as the store keeps it."""
    return {
        "path": found.path,
        "provider": found.provider,
        "name": found.name,
        "account": found.account,
        "server": found.server,
        "evidence": found.evidence,
    }


def found_from_json(obj: dict[str, object]) -> Found:
    """A Found back from the store."""
    text = {k: str(obj.get(k) or "") for k in ("provider", "name", "account", "server")}
    return Found(path=str(obj.get("path")), evidence=str(obj.get("evidence") or ""), **text)
