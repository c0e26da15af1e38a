"""Staff requests for an exception: checked, recorded, exported to the exchange for IT.

Who asks comes from the socket (SO_PEERCRED), never from the message; which device, from
what guardd itself read off the device. A request is only a request: it grants nothing.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Any

from guardd.errors import ErrorCode, GuarddError

MAX_REASON_CHARS = 500
MIN_DURATION_S = 5 * 60
MAX_DURATION_S = 30 * 24 * 3600
_DURATION = re.compile(r"([0-9]{1,5})\s*([mhdw])")
_UNIT_S = {"m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


class RequestState:
    """The states a request goes through (strings on the wire and in the store)."""

    PENDING = "pending"
    APPROVED = "approved"
    DENIED = "denied"
    EXPIRED = "expired"
    REVOKED = "revoked"


@dataclass(frozen=True)
class Request:
    """One exception request, as recorded."""

    id: str
    uid: int
    user: str
    machine_id: str
    subject: dict[str, Any]  # the device's facts, or the folder's path, provider and name
    reason: str
    duration_s: int
    read_only: bool
    created: float
    kind: str = "device"  # or "folder"

    def document(self) -> dict[str, Any]:
        """The request as written to the exchange (and shown to IT)."""
        return {
            "format": "guardd-request/1",
            "id": self.id,
            "uid": self.uid,
            "user": self.user,
            "machine_id": self.machine_id,
            self.kind: self.subject,
            "reason": self.reason,
            "duration_s": self.duration_s,
            "read_only": self.read_only,
            "created": self.created,
        }


def parse_duration(text: str) -> int:
    """'2d', '36h', '90m', '1w' -> seconds (5 minutes to 30 days)."""
    match = _DURATION.fullmatch(text.strip().lower())
    if match is None:
        raise GuarddError(
            ErrorCode.INVALID_ARGUMENT,
            f"cannot read the duration {text[:20]!r}: say for example 90m, 8h, 2d or 1w",
        )
    seconds = int(match.group(1)) * _UNIT_S[match.group(2)]
    if not MIN_DURATION_S <= seconds <= MAX_DURATION_S:
        raise GuarddError(
            ErrorCode.INVALID_ARGUMENT, "an exception can last from 5 minutes to 30 days"
        )
    return seconds


def clean_reason(text: object) -> str:
    """The reason staff typed: one line of printable text, 3 to 500 characters."""
    if not isinstance(text, str):
        raise GuarddError(ErrorCode.INVALID_ARGUMENT, "the reason must be text")
    flat = " ".join("".join(c if unicodedata.category(c)[0] != "C" else " " for c in text).split())
    if len(flat) < 3:
        raise GuarddError(
            ErrorCode.INVALID_ARGUMENT, "please say why you need this (a few words are enough)"
        )
    if len(flat) > MAX_REASON_CHARS:
        raise GuarddError(
            ErrorCode.INVALID_ARGUMENT,
            f"the reason is too long ({MAX_REASON_CHARS} characters at most)",
        )
    return flat
