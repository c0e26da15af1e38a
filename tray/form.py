"""The exception request as the dialog collects it, checked and turned into the request
guardd takes: pure, so it is tested without a display."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from guardd.errors import GuarddError
from guardd.exceptions.requests import clean_reason
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


@dataclass(frozen=True)
class ExceptionForm:
    """What the person filled in."""

    reason: str
    duration: str  # one of DURATIONS' second items
    read_only: bool


def reason_problem(reason: str) -> str | None:
    """Why the reason cannot be sent yet, in words (None when it can): guardd's own check."""
    try:
        clean_reason(reason)
    except GuarddError as e:
        return e.message[:1].upper() + e.message[1:] + "."
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
