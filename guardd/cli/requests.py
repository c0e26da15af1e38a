"""Showing exception requests to people (staff see theirs, IT see everyone's)."""

from __future__ import annotations

import time
from typing import Any

from guardd.cli.common import safe
from guardd.errors import ErrorCode, GuarddError


def requests_list(result: object) -> list[dict[str, Any]]:
    """Check the daemon's answer has the shape of a request list."""
    if not isinstance(result, list) or not all(isinstance(r, dict) for r in result):
        raise GuarddError(ErrorCode.INTERNAL, "unexpected answer from guardd")
    return result


def when(stamp: object) -> str:
    """'2026-11-24 17:00' in local time, or '?'."""
    if isinstance(stamp, (int, float)) and not isinstance(stamp, bool):
        return time.strftime("%Y-%m-%d %H:%M", time.localtime(stamp))
    return "?"


def standing(request: dict[str, Any]) -> str:
    """Where a request stands, in words."""
    state = request.get("state")
    detail = safe(request.get("detail"), 200) if request.get("detail") else ""
    if state == "approved":
        return f"approved until {when(request.get('until'))}"
    if state == "denied":
        return f"denied: {detail}" if detail else "denied"
    if state == "pending":
        return "waiting for IT"
    return f"{safe(state, 20)}" + (f": {detail}" if detail else "")


def _days(seconds: object) -> str:
    if not isinstance(seconds, int):
        return "?"
    if seconds % 86400 == 0:
        days = seconds // 86400
        return f"{days} day{'s' if days != 1 else ''}"
    hours = max(1, seconds // 3600)
    return f"{hours} hour{'s' if hours != 1 else ''}"


def subject(request: dict[str, Any]) -> str:
    """What a request is about: a device, or a cloud-sync folder."""
    folder = request.get("folder")
    if isinstance(folder, dict):
        return f"{safe(folder.get('name'), 40)} folder {safe(folder.get('path'), 200)}"
    raw = request.get("device")
    device: dict[str, Any] = raw if isinstance(raw, dict) else {}
    return f"device {safe(device.get('id'), 16)} (serial {safe(device.get('serial'))})"


def print_requests(requests: list[dict[str, Any]], with_user: bool = False) -> None:
    """One request per paragraph: what, for how long, and where it stands."""
    if not requests:
        print("No requests.")
        return
    for request in requests:
        who = f" by {safe(request.get('user'))}" if with_user else ""
        access = ", read-only" if request.get("read_only") else ""
        print(f"{safe(request.get('id'), 64)}{who}: {standing(request)}")
        print(
            f"    {subject(request)} "
            f"for {_days(request.get('duration_s'))}{access}, asked {when(request.get('created'))}"
        )
        print(f"    reason: {safe(request.get('reason'), 500)}")
