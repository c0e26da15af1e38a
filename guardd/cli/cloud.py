"""Showing cloud-sync folders (staff see theirs with guardctl, IT everyone's with guard-admin)."""

from __future__ import annotations

from typing import Any

from guardd.cli.common import safe
from guardd.cli.requests import when
from guardd.errors import ErrorCode, GuarddError

_STANDING = {
    "blocked": "BLOCKED",
    "failed": "SHOULD BE BLOCKED (guardd could not)",
    "allowed": "allowed",
    "approved": "allowed by an exception",
}


def folders_list(result: object) -> list[dict[str, Any]]:
    """Check the daemon's answer has the shape of a folder list."""
    if not isinstance(result, list) or not all(isinstance(f, dict) for f in result):
        raise GuarddError(ErrorCode.INTERNAL, "unexpected answer from guardd")
    return result


def print_folders(folders: list[dict[str, Any]], with_rule: bool) -> None:
    """One folder per paragraph: where, which provider, where it stands and why."""
    if not folders:
        print("No cloud-sync folders found.")
        return
    for folder in folders:
        state = str(folder.get("state"))
        standing = _STANDING.get(state, safe(state, 20))
        if state == "approved":
            standing += f" until {when(folder.get('until'))}"
        print(f"{safe(folder.get('path'), 200)}: {safe(folder.get('name'), 40)}, {standing}")
        print(f"    {safe(folder.get('reason'), 300)}")
        if folder.get("problem"):
            print(f"    problem: {safe(folder.get('problem'), 300)}")
        if with_rule:
            rule = f"rule {safe(folder.get('rule'), 80)}, owner uid {folder.get('owner_uid')}"
            print(f"    {rule}: {safe(folder.get('evidence'), 200)}")
    if any(f.get("state") == "blocked" for f in folders) and not with_rule:
        print('To ask IT for an exception: guardctl request-cloud FOLDER --reason "..."')
