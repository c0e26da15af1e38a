"""The tamper suite, with real gpg and real ed25519 keys: every forged, altered, misdirected
or stale approval is refused with its reason; the genuine one is accepted."""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from test_signing_support import DAY, Homes, Keyring, homes_fixture  # noqa: F401 - a fixture by name

from signing import (
    DeviceRef,
    Document,
    GpgUnavailable,
    Kind,
    Refused,
    Verifier,
    add_key,
    build_home,
    canonical,
    check_binding,
    list_keys,
    make_approval,
    make_denial,
    make_revocation,
    parse_status,
    read_envelope,
    seal,
    verify,
    write_envelope,
)
from signing.gpg import Gpg
from signing.verify import UNAVAILABLE

MACHINE = "0f3c9a7d2b8e4c1f9a6d3e2b1c0f9e8d"
REQUEST: dict[str, Any] = {
    "id": "req-20261122-080000-0011aabb",
    "machine_id": MACHINE,
    "user": "alice",
    "uid": 1001,
    "device": {"serial": "SCHOOL-000123", "vendor_id": "0781", "product_id": "5581"},
}
DEVICE = DeviceRef("SCHOOL-000123", "0781", "5581")


@dataclass
class Pki:
    """IT's keyring, the trusted-keys folder and the daemon's verification home.

    a: pinned. c: pinned, signs with its subkey. b: in the folder (so in the home) with a
    signing subkey, but left out of the pinned set where a test says so. u: nobody trusts it.
    e: pinned, created 10 days ago with a 1-day expiry (so expired now).
    """

    it: Keyring
    gpg: Gpg
    folder: Path
    home: Path
    pinned: frozenset[str]
    a: str
    b: str
    b_sub: str
    c: str
    c_sub: str
    u: str
    e: str

    def verifier(self, pinned: frozenset[str] | None = None) -> Verifier:
        return Verifier(self.home, self.pinned if pinned is None else pinned)


@pytest.fixture(scope="module")
def pki() -> Iterator[Pki]:
    made = Homes()
    try:
        it = made.keyring()
        a, b, c, u = (it.new_key(f"IT approver {n}") for n in "ABCU")
        b_sub, c_sub = it.add_signing_subkey(b), it.add_signing_subkey(c)
        e = it.new_key_in_the_past("IT approver E", days_ago=10, expire="1d")
        folder = made.folder("gs-keys-")
        folder.chmod(0o755)
        for fpr in (a, b, c, e):
            assert add_key(folder, it.public(fpr)) == fpr
        home = made.folder("gs-v-") / "home"
        pinned = build_home(folder, home)
        assert pinned == {a, b, c, e}
        yield Pki(it, Gpg(it.home), folder, home, pinned, a, b, b_sub, c, c_sub, u, e)
    finally:
        made.cleanup()


def approval(signer: str, now: float | None = None, **changes: Any) -> Document:
    return make_approval(
        {**REQUEST, **changes},
        approver_fpr=signer,
        duration_s=DAY,
        read_only=True,
        now=time.time() if now is None else now,
    )


def binding(doc: Document, **changes: Any) -> None:
    facts: dict[str, Any] = {
        "machine_id": MACHINE,
        "user": "alice",
        "uid": 1001,
        "subject": DEVICE,
        "now": time.time(),
        "skew_s": 300,
        "revoked_ids": frozenset(),
        "request_known": True,
        "request_answered_by": None,
    }
    facts.update(changes)
    check_binding(doc, **facts)


def refused(pki: Pki, raw: bytes, pinned: frozenset[str] | None = None) -> str:
    with pytest.raises(Refused) as caught:
        pki.verifier(pinned).verify(raw)
    assert "\n" not in caught.value.reason
    return caught.value.reason


def binding_refused(doc: Document, **changes: Any) -> str:
    with pytest.raises(Refused) as caught:
        binding(doc, **changes)
    return caught.value.reason


# --- accepted ------------------------------------------------------------------------------


def test_happy_path(pki: Pki) -> None:
    doc = approval(pki.a)
    raw = seal(doc, pki.gpg, pki.a)
    verified = pki.verifier().verify(raw)
    assert verified == doc
    assert verified.read_only
    binding(verified)
    assert verify(raw, pki.home, pki.pinned) == doc  # the one-shot form agrees


def test_a_signing_subkey_of_a_pinned_primary_is_accepted(pki: Pki) -> None:
    """Pinning is by primary fingerprint: gpg signs with C's subkey, VALIDSIG names both, and
    the primary (the last VALIDSIG field) is what is compared with the pinned set."""
    doc = approval(pki.c)
    raw = seal(doc, pki.gpg, pki.c)
    assert pki.verifier().verify(raw) == doc
    envelope = read_envelope(raw)
    isolated = Gpg(pki.home, isolated=True)
    valid = parse_status(isolated.verify_detached(envelope.signed_bytes, envelope.signature))
    sig = valid.signatures[0].validsig
    assert sig is not None
    assert (sig.fingerprint, sig.primary_fingerprint) == (pki.c_sub, pki.c)


def test_a_denial_verifies_and_binds(pki: Pki) -> None:
    doc = make_denial(REQUEST, approver_fpr=pki.a, reason="use the shared drive", now=time.time())
    verified = pki.verifier().verify(seal(doc, pki.gpg))
    assert verified.kind is Kind.DENIAL
    binding(verified)
    reason = binding_refused(verified, request_answered_by="apr-20261122-000000-00000000")
    assert "already answered by apr-20261122-000000-00000000" in reason


# --- forged or altered ---------------------------------------------------------------------


def test_edited_document_one_byte(pki: Pki) -> None:
    raw = seal(approval(pki.a), pki.gpg, pki.a)
    envelope = json.loads(raw)
    envelope["document"] = envelope["document"].replace("SCHOOL-000123", "SCHOOL-000124")
    edited = json.dumps(envelope).encode()
    assert refused(pki, edited) == (
        "the signature does not match the document (it was changed after signing)"
    )


def test_signature_by_an_untrusted_key(pki: Pki) -> None:
    raw = seal(approval(pki.u), pki.gpg, pki.u)
    assert refused(pki, raw) == (
        f"signed by key {pki.u}, which is not a trusted approver on this machine"
    )


def test_signature_by_a_trusted_keys_subkey_when_only_another_key_is_pinned(pki: Pki) -> None:
    """B is in the verification home, but only A is pinned: B's subkey signature is refused.
    Pinning B's *subkey* fingerprint does not help either: only primaries are compared."""
    raw = seal(approval(pki.b), pki.gpg, pki.b)
    expected = (
        f"signed by subkey {pki.b_sub} of key {pki.b}, "
        "which is not a trusted approver on this machine"
    )
    assert refused(pki, raw, frozenset({pki.a})) == expected
    assert refused(pki, raw, frozenset({pki.a, pki.b_sub})) == expected
    assert pki.verifier().verify(raw).approver == pki.b  # and with B pinned, it is fine


def test_two_signatures(pki: Pki) -> None:
    """Both signers pinned and both signatures good: still refused (gpg -u A -u C)."""
    data = canonical(approval(pki.a))
    raw = write_envelope(data, pki.it.sign(data, pki.a, pki.c))
    assert refused(pki, raw) == "the document carries 2 signatures; exactly one is required"


def test_the_approver_field_must_name_the_signer(pki: Pki) -> None:
    data = canonical(approval(pki.a))
    raw = write_envelope(data, pki.it.sign(data, pki.c))
    assert refused(pki, raw) == (
        f"the document names approver {pki.a} but was signed by key {pki.c}"
    )


def test_expired_key(pki: Pki) -> None:
    """E was created 10 days ago with a 1-day expiry (--faked-system-time) and signed while it
    was valid (--faked-system-time again): gpg now says EXPKEYSIG and KEYEXPIRED."""
    signed_at = int(time.time()) - 10 * DAY + 3600
    doc = approval(pki.e, now=signed_at)
    data = canonical(doc)
    raw = write_envelope(data, pki.it.sign(data, pki.e, faked_time=signed_at))
    assert refused(pki, raw) == f"the approver's key {pki.e} has expired"


def test_revoked_key(homes: Homes) -> None:
    """R signs while valid; later IT revokes R and re-adds its key file, now carrying the
    revocation: the rebuilt home makes gpg say REVKEYSIG/KEYREVOKED, and it is refused."""
    it = homes.keyring()
    r = it.new_key("IT approver R")
    folder = homes.folder("gs-keys-")
    folder.chmod(0o755)
    add_key(folder, it.public(r))
    home = homes.folder("gs-v-") / "home"
    raw = seal(approval(r), Gpg(it.home), r)
    assert Verifier(home, build_home(folder, home)).verify(raw).approver == r

    it.revoke(r)
    add_key(folder, it.public(r))
    (info,) = list_keys(folder)
    assert info.revoked
    pinned = build_home(folder, home)
    assert pinned == {r}  # still listed: its signatures are refused because gpg says revoked
    with pytest.raises(Refused) as caught:
        Verifier(home, pinned).verify(raw)
    assert caught.value.reason == f"the approver's key {r} has been revoked"


def test_revoked_key_from_a_separate_revocation_certificate(homes: Homes) -> None:
    """The revocation certificate alone (gpg's openpgp-revocs.d/FPR.rev, colon removed),
    appended to the public key file, revokes the key the same way."""
    it = homes.keyring()
    r = it.new_key("IT approver R2")
    raw = seal(approval(r), Gpg(it.home), r)
    folder = homes.folder("gs-keys-")
    folder.chmod(0o755)
    add_key(folder, it.public(r) + it.revocation_certificate(r))
    home = homes.folder("gs-v-") / "home"
    with pytest.raises(Refused, match=f"the approver's key {r} has been revoked"):
        verify(raw, home, build_home(folder, home))


def test_malformed_armor(pki: Pki) -> None:
    raw = seal(approval(pki.a), pki.gpg, pki.a)
    envelope = json.loads(raw)
    envelope["signature"] = "-----BEGIN PGP SIGNATURE-----\n\nAAAA\n-----END PGP SIGNATURE-----\n"
    garbage = json.dumps(envelope).encode()
    assert refused(pki, garbage) == (
        "no signature could be read (malformed armor, or not a signature)"
    )
    lines = json.loads(raw)["signature"].splitlines()
    envelope["signature"] = "\n".join(lines[:2] + lines[3:])  # a line of base64 dropped
    assert refused(pki, json.dumps(envelope).encode()) == (
        "no signature could be read (malformed armor, or not a signature)"
    )
    envelope["signature"] = "not armor at all"
    assert refused(pki, json.dumps(envelope).encode()) == (
        "not a valid signed document: the signature is not an ASCII-armored PGP signature block"
    )


def test_an_inline_signed_message_passed_off_as_a_detached_signature(pki: Pki) -> None:
    """Something a pinned key once signed (an e-mail), relabelled as a detached signature and
    sent with a forged document: gpg says "not a detached signature" and reports no signature."""
    inline = pki.it.sign_inline(b"Minutes of the IT meeting\n", pki.a)
    relabelled = inline.replace("PGP MESSAGE", "PGP SIGNATURE")
    raw = write_envelope(canonical(approval(pki.a)), relabelled)
    assert refused(pki, raw) == ("no signature could be read (malformed armor, or not a signature)")


def test_a_50_mb_file_is_refused_without_running_gpg(pki: Pki) -> None:
    raw = b" " * (50 * 1024 * 1024)
    with pytest.raises(Refused) as caught:
        verify(raw, pki.home, pki.pinned, gpg_binary="/nonexistent/gpg")
    assert caught.value.reason == (
        f"not a valid signed document: the file is {len(raw)} bytes; "
        "a signed document is at most 65536"
    )


def test_the_document_not_canonical_but_validly_signed(pki: Pki) -> None:
    doc = approval(pki.a)
    spaced = json.dumps(json.loads(canonical(doc)), indent=1, sort_keys=True).encode()
    raw = write_envelope(spaced, pki.it.sign(spaced, pki.a))
    assert refused(pki, raw) == (
        "the signed document is not in canonical form (sorted keys, no spaces, UTF-8)"
    )


def test_an_unknown_version_validly_signed(pki: Pki) -> None:
    obj = json.loads(canonical(approval(pki.a)))
    obj["version"] = 3
    data = json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()
    raw = write_envelope(data, pki.it.sign(data, pki.a))
    assert refused(pki, raw) == (
        "the signed document is invalid: document version 3 is not known (this guardd reads 1, 2)"
    )


def test_a_device_approval_relabelled_as_a_folder_one_is_refused(pki: Pki) -> None:
    obj = json.loads(canonical(approval(pki.a)))
    obj["version"] = 2  # signed as such: the signature is genuine, the document is not
    data = json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()
    raw = write_envelope(data, pki.it.sign(data, pki.a))
    assert refused(pki, raw) == "the signed document is invalid: field 'folder' is missing"


# --- genuine, but not for here or not now --------------------------------------------------


def test_approval_for_another_machine_user_or_serial(pki: Pki) -> None:
    doc = pki.verifier().verify(seal(approval(pki.a), pki.gpg, pki.a))
    assert binding_refused(doc, machine_id="a1b2c3") == (
        f"approval {doc.id} is for machine {MACHINE}, not this one (a1b2c3)"
    )
    assert binding_refused(doc, user="bob", uid=1002) == (
        f"approval {doc.id} is for user alice (uid 1001), not bob (uid 1002)"
    )
    assert binding_refused(doc, subject=DeviceRef("SCHOOL-000999", "0781", "5581")) == (
        f"approval {doc.id} is for the device with serial 'SCHOOL-000123', not 'SCHOOL-000999'"
    )


def test_outside_its_window(pki: Pki) -> None:
    three_days_ago = time.time() - 3 * DAY
    doc = pki.verifier().verify(seal(approval(pki.a, now=three_days_ago), pki.gpg, pki.a))
    assert binding_refused(doc).startswith(f"approval {doc.id} expired at ")
    assert binding_refused(doc, now=three_days_ago - 3600).startswith(
        f"approval {doc.id} is not valid yet"
    )


def test_replayed_after_revocation(pki: Pki) -> None:
    doc = pki.verifier().verify(seal(approval(pki.a), pki.gpg, pki.a))
    binding(doc)
    revocation = make_revocation(doc, approver_fpr=pki.a, reason="stick lost", now=time.time())
    verified = pki.verifier().verify(seal(revocation, pki.gpg, pki.a))
    binding(verified, user="someone-else", request_known=False)  # only the machine matters
    assert verified.revokes == doc.id
    assert binding_refused(doc, revoked_ids={verified.revokes}) == (
        f"approval {doc.id} has been revoked"
    )


# --- gpg missing: fail closed --------------------------------------------------------------


def test_gpg_missing_from_path(pki: Pki, monkeypatch: pytest.MonkeyPatch) -> None:
    raw = seal(approval(pki.a), pki.gpg, pki.a)
    monkeypatch.setenv("PATH", "")
    with pytest.raises(GpgUnavailable) as caught:
        verify(raw, pki.home, pki.pinned)
    assert str(caught.value) == UNAVAILABLE
    with pytest.raises(GpgUnavailable, match=r"^gpg is not installed: approvals cannot be"):
        Verifier(pki.home, pki.pinned)


def test_gpg_binary_missing(pki: Pki) -> None:
    raw = seal(approval(pki.a), pki.gpg, pki.a)
    with pytest.raises(GpgUnavailable, match=UNAVAILABLE):
        verify(raw, pki.home, pki.pinned, gpg_binary="/nonexistent/gpg")


def test_gpg_removed_while_the_daemon_runs(pki: Pki, homes: Homes) -> None:
    raw = seal(approval(pki.a), pki.gpg, pki.a)
    copy = homes.folder("gs-bin-") / "gpg"
    gpg_path = shutil.which("gpg")
    assert gpg_path is not None
    shutil.copy2(gpg_path, copy)
    verifier = Verifier(pki.home, pki.pinned, gpg_binary=str(copy))
    assert verifier.verify(raw).approver == pki.a
    os.unlink(copy)
    with pytest.raises(GpgUnavailable, match=UNAVAILABLE):
        verifier.verify(raw)


def test_no_trusted_keys_configured(pki: Pki) -> None:
    raw = seal(approval(pki.a), pki.gpg, pki.a)
    assert refused(pki, raw, frozenset()) == (
        "no trusted approver keys are configured on this machine"
    )
