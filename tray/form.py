"""The exception request as the dialog collects it, checked and turned into the request
guardd takes: pure, so it is tested without a display."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tray.menu import Target

# (what the person reads, what guardd reads)
DURATIONS = (
    ("1 hour", "1h"),
    ("Today (8 hours)", "8h"),
    ("1 day", "1d"),
    ("2 days", "2d"),
    ("1 week", "1w"),
    ("30 days", "30d"),
)
DEFAULT_DURATION = "1d"
MIN_REASON = 3
MAX_REASON = 500


@dataclass(frozen=True)
class ExceptionForm:
    """What the person filled in."""

    reason: str
    duration: str  # one of DURATIONS' second items
    read_only: bool


def reason_problem(reason: str) -> str | None:
    """Why the reason cannot be sent yet, in words (None when it can)."""
    length = len(" ".join(reason.split()))
    if length < MIN_REASON:
        return "Please say in a few words why you need it."
    if length > MAX_REASON:
        return f"Please keep it under {MAX_REASON} characters."
    return None


def request_args(target: Target, form: ExceptionForm) -> dict[str, Any]:
    """The arguments of guardd's `request` for this target and form."""
    key = "folder" if target.kind == "folder" else "device"
    return {
        key: target.key,
        "reason": " ".join(form.reason.split()),
        "duration": form.duration,
        "read_only": form.read_only,
    }
