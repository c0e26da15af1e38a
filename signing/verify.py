"""Is a signed decision genuine, and does it apply here and now?

Two steps, both raising Refused with a one-line, plain-English reason (it goes to the audit
trail and to IT):

1. `verify` (gpg): the envelope's shape and size; exactly one signature; gpg's VALIDSIG; the
   key neither expired nor revoked; the signing key's *primary* fingerprint pinned (a signing
   subkey of a pinned key is fine; a key id never is) and equal to the document's `approver`;
   the signed bytes exactly the canonical form of the document they parse to; version known.
2. `check_binding` (pure): the decision is for this machine, this user and this device, now is
   inside its window (give or take the configured clock skew), it is not revoked, and the
   request it answers exists here and was not answered differently.

gpg runs in a dedicated home that holds only the trusted keys (trust.build_home), and only its
status lines are read. GpgUnavailable (gpg missing) is not a Refused: callers must treat it,
like every SigningError, as "nothing is honoured" and say so loudly.
"""

from __future__ import annotations

import time
from collections.abc import Collection
from pathlib import Path

from signing.document import DeviceRef, Document, FolderRef, Kind, canonical, parse
from signing.envelope import Envelope, read_envelope
from signing.errors import DocumentError, EnvelopeError, GpgUnavailable, Refused
from signing.gpg import Gpg
from signing.status import (
    ERRSIG_NO_PUBKEY,
    Signature,
    SigState,
    StatusReport,
    ValidSig,
    parse_status,
)

UNAVAILABLE = "gpg is not installed: approvals cannot be checked, so none are honoured"
WEAK_HASHES = {1: "MD5", 2: "SHA-1", 3: "RIPEMD-160"}
BINARY_DOCUMENT = "00"  # signature class of a detached signature over binary data


def _envelope(raw: bytes) -> Envelope:
    try:
        return read_envelope(raw)
    except EnvelopeError as e:
        raise Refused(f"not a valid signed document: {e}") from None


class Verifier:
    """Verifies signed decisions with one dedicated home and pinned set (reuse it: warm)."""

    def __init__(self, home: Path, pinned: frozenset[str], gpg_binary: str | None = None) -> None:
        self.pinned = frozenset(fpr.upper() for fpr in pinned)
        try:
            self._gpg = Gpg(home, gpg_binary, isolated=True)
        except GpgUnavailable as e:
            raise GpgUnavailable(UNAVAILABLE) from e

    def verify(self, raw: bytes) -> Document:
        """The document in `raw` (an envelope's bytes), if it is genuine; else Refused."""
        return self.verify_envelope(_envelope(raw))

    def verify_envelope(self, envelope: Envelope) -> Document:
        """As `verify`, for an envelope already read."""
        if not self.pinned:
            raise Refused("no trusted approver keys are configured on this machine")
        signed = envelope.signed_bytes
        try:
            status = self._gpg.verify_detached(signed, envelope.signature)
        except GpgUnavailable as e:
            raise GpgUnavailable(UNAVAILABLE) from e
        valid = check_signature(parse_status(status), self.pinned)
        return check_document(signed, valid)


def verify(
    raw: bytes, home: Path, pinned: frozenset[str], gpg_binary: str | None = None
) -> Document:
    """One-shot `Verifier(home, pinned, gpg_binary).verify(raw)`; the envelope is read first,
    so an oversized or malformed file is refused without running gpg."""
    envelope = _envelope(raw)
    return Verifier(home, pinned, gpg_binary).verify_envelope(envelope)


def unverified_document(raw: bytes) -> Document:
    """The document inside an envelope WITHOUT checking its signature: for listing and for
    building a revocation in the admin CLI, never for honouring anything."""
    envelope = read_envelope(raw)
    return parse(envelope.signed_bytes)


# --- the signature -------------------------------------------------------------------------


def check_signature(report: StatusReport, pinned: frozenset[str]) -> ValidSig:
    """The one good signature's VALIDSIG, if gpg's status says so and its key is pinned."""
    if report.malformed:
        raise Refused(f"gpg's status output could not be read ({report.malformed[0][:60]})")
    if report.outside:
        raise Refused("gpg's status output reported a signature result outside a signature")
    count = max(len(report.signatures), report.result_count)
    if count == 0:
        raise Refused("no signature could be read (malformed armor, or not a signature)")
    if count > 1:
        raise Refused(f"the document carries {count} signatures; exactly one is required")
    sig = report.signatures[0]
    valid = _verdict(sig)
    if valid.primary_fingerprint not in pinned:
        raise Refused(_untrusted(valid))
    if valid.hash_algo in WEAK_HASHES:
        raise Refused(f"the signature uses a weak hash ({WEAK_HASHES[valid.hash_algo]})")
    if valid.sig_class != BINARY_DOCUMENT:
        raise Refused(f"the signature is not a binary document signature (class {valid.sig_class})")
    if report.failures:
        raise Refused(f"gpg reported a problem: {report.failures[0][:80]}")
    return valid


def _verdict(sig: Signature) -> ValidSig:
    """The VALIDSIG of a good signature by a key neither expired nor revoked; else Refused."""
    state = sig.state
    if state is SigState.BAD:
        raise Refused("the signature does not match the document (it was changed after signing)")
    if state is SigState.ERROR:
        if sig.no_pubkey or sig.error_code == ERRSIG_NO_PUBKEY:
            who = sig.error_fingerprint or sig.key_id
            raise Refused(f"signed by key {who}, which is not a trusted approver on this machine")
        raise Refused(f"the signature could not be checked (gpg error {sig.error_code})")
    valid = sig.validsig
    if state is None or valid is None:
        raise Refused("gpg did not report a valid signature")
    if state is SigState.REVOKED_KEY or sig.key_revoked:
        raise Refused(f"the approver's key {valid.primary_fingerprint} has been revoked")
    if state is SigState.EXPIRED_KEY or sig.key_expired:
        raise Refused(f"the approver's key {valid.primary_fingerprint} has expired")
    if state is SigState.EXPIRED_SIGNATURE:
        raise Refused("the signature has expired")
    if state is not SigState.GOOD:
        raise Refused(f"gpg did not report a good signature ({state})")
    return valid


def _untrusted(valid: ValidSig) -> str:
    primary = valid.primary_fingerprint
    if valid.fingerprint != primary:
        return (
            f"signed by subkey {valid.fingerprint} of key {primary}, "
            "which is not a trusted approver on this machine"
        )
    return f"signed by key {primary}, which is not a trusted approver on this machine"


def check_document(signed: bytes, valid: ValidSig) -> Document:
    """The document the signature covers: valid, canonical, naming the key that signed it."""
    try:
        doc = parse(signed)
    except DocumentError as e:
        raise Refused(f"the signed document is invalid: {e}") from None
    if canonical(doc) != signed:
        raise Refused(
            "the signed document is not in canonical form (sorted keys, no spaces, UTF-8)"
        )
    if doc.approver != valid.primary_fingerprint:
        raise Refused(
            f"the document names approver {doc.approver} "
            f"but was signed by key {valid.primary_fingerprint}"
        )
    return doc


# --- does it apply here? -------------------------------------------------------------------


def _when(epoch: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(epoch))


def check_binding(  # noqa: PLR0913 - each fact is named at the call site, keyword-only
    doc: Document,
    *,
    machine_id: str,
    user: str,
    uid: int,
    subject: DeviceRef | FolderRef,
    now: float,
    skew_s: int,
    revoked_ids: Collection[str],
    request_known: bool,
    request_answered_by: str | None,
) -> None:
    """Refused unless `doc` applies to this machine, user and subject (device or folder), now.

    - approvals: everything below;
    - denials: machine, user, device and the request (no window, nothing to revoke);
    - revocations: the machine only. Refusing a revocation keeps an approval alive, so the
      only question is whether it is addressed to this machine; its `revokes` id does the rest.

    `subject` holds the plugged device's facts (serial, vendor and product ids; a device that
    reports no serial cannot match) or the folder's path and provider. `request_answered_by`
    is the id of the decision already recorded for the request, if any: the same id again (a
    re-read after a restart) is fine.
    """
    what = f"{doc.kind} {doc.id}"
    if doc.machine_id != machine_id:
        raise Refused(f"{what} is for machine {doc.machine_id}, not this one ({machine_id})")
    if doc.kind is Kind.REVOCATION:
        return
    if doc.user != user or doc.uid != uid:
        raise Refused(f"{what} is for user {doc.user} (uid {doc.uid}), not {user} (uid {uid})")
    _check_subject(what, doc, subject)
    if doc.kind is Kind.APPROVAL:
        _check_window(what, doc, now, skew_s)
        if doc.id in revoked_ids:
            raise Refused(f"{what} has been revoked")
    if not request_known:
        raise Refused(f"{what} answers request {doc.request_id}, which this machine never made")
    if request_answered_by is not None and request_answered_by != doc.id:
        raise Refused(
            f"{what} answers request {doc.request_id}, "
            f"which was already answered by {request_answered_by}"
        )


def _check_subject(what: str, doc: Document, here: DeviceRef | FolderRef) -> None:
    if isinstance(here, FolderRef):
        if doc.folder is None:
            raise Refused(f"{what} is about a device, not a folder")
        if doc.folder != here:
            raise Refused(
                f"{what} is for the {doc.folder.provider} folder {doc.folder.path!r}, "
                f"not the {here.provider} folder {here.path!r}"
            )
        return
    if doc.device is None:
        raise Refused(f"{what} is about a folder, not a device")
    _check_device(what, doc.device, here)


def _check_device(what: str, wanted: DeviceRef, here: DeviceRef) -> None:
    if not here.serial:
        raise Refused(f"{what} cannot apply: the device reports no serial number")
    if wanted.serial != here.serial:
        raise Refused(
            f"{what} is for the device with serial {wanted.serial!r}, not {here.serial!r}"
        )
    vendor, product = here.vendor_id.lower(), here.product_id.lower()
    if (wanted.vendor_id, wanted.product_id) != (vendor, product):
        raise Refused(
            f"{what} is for a {wanted.vendor_id}:{wanted.product_id} device, not {vendor}:{product}"
        )


def _check_window(what: str, doc: Document, now: float, skew_s: int) -> None:
    assert doc.not_before is not None
    assert doc.not_after is not None
    if now < doc.not_before - skew_s:
        raise Refused(f"{what} is not valid yet: it starts at {_when(doc.not_before)}")
    if now > doc.not_after + skew_s:
        raise Refused(f"{what} expired at {_when(doc.not_after)}")
