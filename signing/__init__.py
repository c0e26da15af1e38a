"""Signed decisions (approvals, denials, revocations): IT signs with GPG, guardd verifies.

The daemon: `trust.build_home(trusted_keys, home)` at start (and when the folder changes),
then `Verifier(home, pinned).verify(raw)` for each signed file and `check_binding(...)` for
the device in hand. The admin CLI: `Gpg()`, `signing_key`, `make_approval`/`make_denial`/
`make_revocation`, `seal`; and `add_key`/`list_keys`/`remove_key` for `guard-admin keys`.
Every failure is a SigningError whose message is one plain-English line.
"""

from signing.document import (
    Access,
    DeviceRef,
    Document,
    FolderRef,
    Kind,
    canonical,
    describe,
    parse,
    subject,
)
from signing.envelope import Envelope, read_envelope, write_envelope
from signing.errors import (
    DocumentError,
    EnvelopeError,
    GpgError,
    GpgUnavailable,
    Refused,
    SigningError,
    TrustError,
)
from signing.gpg import Gpg, find_gpg
from signing.sign import make_approval, make_denial, make_revocation, seal, signing_key
from signing.status import Signature, SigState, StatusReport, ValidSig, parse_status
from signing.trust import KeyInfo, add_key, build_home, list_keys, normalize_fpr, remove_key
from signing.verify import Verifier, check_binding, unverified_document, verify

__all__ = [
    "Access",
    "DeviceRef",
    "Document",
    "DocumentError",
    "Envelope",
    "EnvelopeError",
    "FolderRef",
    "Gpg",
    "GpgError",
    "GpgUnavailable",
    "KeyInfo",
    "Kind",
    "Refused",
    "SigState",
    "Signature",
    "SigningError",
    "StatusReport",
    "TrustError",
    "ValidSig",
    "Verifier",
    "add_key",
    "build_home",
    "canonical",
    "check_binding",
    "describe",
    "find_gpg",
    "list_keys",
    "make_approval",
    "make_denial",
    "make_revocation",
    "normalize_fpr",
    "parse",
    "parse_status",
    "read_envelope",
    "remove_key",
    "seal",
    "signing_key",
    "subject",
    "unverified_document",
    "verify",
    "write_envelope",
]
