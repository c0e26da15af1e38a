"""guardd's one error type: a code a program can test and a sentence a person can read."""

from __future__ import annotations

from enum import StrEnum


class ErrorCode(StrEnum):
    """Error codes, grouped by kind; the wire carries the value."""

    INVALID_CONFIG = "invalid-config"
    INVALID_RULES = "invalid-rules"
    INVALID_REQUEST = "invalid-request"
    INVALID_ARGUMENT = "invalid-argument"
    UNKNOWN_REQUEST = "unknown-request"
    UNSUPPORTED_VERSION = "unsupported-version"
    TOO_LARGE = "too-large"
    NOT_PERMITTED = "not-permitted"
    NOT_FOUND = "not-found"
    UNAVAILABLE = "unavailable"
    INTERNAL = "internal"


class GuarddError(Exception):
    """An expected failure: carries a code and a plain-English message (never a traceback)."""

    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    def __str__(self) -> str:
        return self.message
