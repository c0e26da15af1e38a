"""The few ways signing can fail; every message is one plain-English line.

The messages go to the audit trail and to IT, so they say what was wrong and never carry a
traceback. Everything derives from SigningError so a caller can catch the lot in one place;
a caller that honours approvals must treat *every* SigningError as "not honoured".
"""

from __future__ import annotations


class SigningError(Exception):
    """Base of every error raised by the signing package."""


class Refused(SigningError):  # noqa: N818 - "the approval was refused" is what the daemon logs
    """A signed document is not honoured; `reason` says why, in one line."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class DocumentError(SigningError):
    """A decision document is malformed (bad field, wrong type, unknown version...)."""


class EnvelopeError(SigningError):
    """A signed file does not have the shape of a guardd envelope, or is too large."""


class GpgUnavailable(SigningError):  # noqa: N818 - the name the daemon's code uses
    """gpg cannot be run at all (not installed, not on PATH, binary missing)."""


class GpgError(SigningError):
    """gpg ran but could not do what was asked (sign, import, list)."""


class TrustError(SigningError):
    """A trusted-key file or folder was refused or could not be changed."""
