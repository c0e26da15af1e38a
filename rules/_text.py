"""Checking and quoting short texts from rules files: shared by the drive and cloud rules."""

from __future__ import annotations


def show(value: str, limit: int = 40) -> str:
    """Quote a user's value for a message: escaped (no control characters reach logs), short."""
    if len(value) > limit:
        return repr(value[:limit]) + "..."
    return repr(value)


def text_problem(name: str, value: str, max_len: int) -> str | None:
    """Check a free-text field (serial, label): 1..max_len printable characters."""
    if not value:
        return f"{name} must not be empty"
    if len(value) > max_len:
        return f"{name} is {len(value)} characters long; at most {max_len} are allowed"
    bad = next((char for char in value if not char.isprintable()), None)
    if bad is not None:
        return f"{name} contains a control or non-printable character (U+{ord(bad):04X})"
    return None
