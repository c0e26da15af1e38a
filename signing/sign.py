"""IT's side: build a decision for a request and seal it (sign it with IT's own key).

The admin CLI's flow:

    gpg = Gpg()                              # IT's keyring ($GNUPGHOME), never the daemon's
    fpr = signing_key(gpg, args.key)         # --key FPR, or the only secret key there
    doc = make_approval(request, approver_fpr=fpr, duration_s=..., read_only=..., now=...)
    data = seal(doc, gpg)                    # envelope bytes for the exchange (signed by fpr)

`seal` checks its own work: it verifies the signature it just made (exactly one signature, by
the approver's key, over the canonical bytes), so a gpg.conf that adds a second signer or
text mode is caught on IT's machine and not on a thousand staff machines.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Mapping
from typing import Any

from signing.colons import ColonKey
from signing.document import (
    FOLDER_VERSION,
    MAX_WINDOW_S,
    Access,
    DeviceRef,
    Document,
    FolderRef,
    Kind,
    canonical,
)
from signing.envelope import write_envelope
from signing.errors import DocumentError, GpgError, Refused, SigningError
from signing.gpg import Gpg
from signing.status import parse_status
from signing.trust import normalize_fpr
from signing.verify import check_document, check_signature

PREFIXES = {Kind.APPROVAL: "apr", Kind.DENIAL: "den", Kind.REVOCATION: "rev"}


def new_id(kind: Kind, now: float) -> str:
    """A fresh decision id: a prefix, the UTC time and randomness (ids sort by time)."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime(now))
    return f"{PREFIXES[kind]}-{stamp}-{secrets.token_hex(4)}"


def new_nonce() -> str:
    """16 random bytes as 32 lowercase hex digits."""
    return secrets.token_hex(16)


def _field(request: Mapping[str, Any], name: str) -> Any:
    if name not in request:
        raise DocumentError(f"the request has no {name!r}")
    return request[name]


def _binding(request: Mapping[str, Any]) -> dict[str, Any]:
    """What a decision copies from the request it answers.

    The request is a mapping with `id`, `machine_id`, `user`, `uid` and either `device`
    (`serial`, `vendor_id`, `product_id`; ids are lowercased) or `folder` (`path`,
    `provider`); everything else is checked by Document itself.
    """
    uid = _field(request, "uid")
    if type(uid) is not int:
        raise DocumentError("the request's 'uid' is not an integer")
    text = {name: _field(request, name) for name in ("id", "machine_id", "user")}
    if not all(isinstance(value, str) for value in text.values()):
        raise DocumentError("the request's id, machine_id and user must be strings")
    return {
        "request_id": text["id"],
        "machine_id": text["machine_id"],
        "user": text["user"],
        "uid": uid,
        **_subject(request),
    }


def _subject(request: Mapping[str, Any]) -> dict[str, Any]:
    folder = request.get("folder")
    if folder is not None:
        if not isinstance(folder, Mapping):
            raise DocumentError("the request's 'folder' is not an object")
        path, provider = folder.get("path"), folder.get("provider")
        if not (isinstance(path, str) and isinstance(provider, str)):
            raise DocumentError("the request's folder needs a path and a provider")
        return {"folder": FolderRef(path, provider), "version": FOLDER_VERSION}
    device = _field(request, "device")
    if not isinstance(device, Mapping):
        raise DocumentError("the request's 'device' is not an object")
    serial, vendor, product = (device.get(n) for n in ("serial", "vendor_id", "product_id"))
    if not (isinstance(serial, str) and isinstance(vendor, str) and isinstance(product, str)):
        raise DocumentError("the request's device needs a serial, a vendor_id and a product_id")
    return {"device": DeviceRef(serial, vendor.lower(), product.lower())}


def make_approval(  # noqa: PLR0913 - keyword-only, each named at the call site
    request: Mapping[str, Any],
    *,
    approver_fpr: str,
    duration_s: int,
    read_only: bool,
    require_encryption: bool = True,
    now: float,
    note: str | None = None,
) -> Document:
    """An approval of `request` from now for `duration_s` seconds (at most 366 days)."""
    if not 0 < duration_s <= MAX_WINDOW_S:
        raise DocumentError(
            f"the duration must be between 1 second and 366 days (got {duration_s} s)"
        )
    start = int(now)
    binding = _binding(request)
    for_device = "device" in binding  # access and encryption mean nothing for a folder
    return Document(
        kind=Kind.APPROVAL,
        id=new_id(Kind.APPROVAL, now),
        issued_at=start,
        nonce=new_nonce(),
        approver=approver_fpr.replace(" ", "").upper(),
        access=(Access.READ_ONLY if read_only else Access.READ_WRITE) if for_device else None,
        require_encryption=require_encryption if for_device else None,
        not_before=start,
        not_after=start + duration_s,
        reason=note or None,
        **binding,
    )


def make_denial(
    request: Mapping[str, Any], *, approver_fpr: str, reason: str, now: float
) -> Document:
    """A denial of `request`, with the reason the member of staff will read."""
    return Document(
        kind=Kind.DENIAL,
        id=new_id(Kind.DENIAL, now),
        issued_at=int(now),
        nonce=new_nonce(),
        approver=approver_fpr.replace(" ", "").upper(),
        reason=reason,
        **_binding(request),
    )


def make_revocation(approval: Document, *, approver_fpr: str, reason: str, now: float) -> Document:
    """A revocation of `approval`, addressed to the same machine, user and device."""
    if approval.kind is not Kind.APPROVAL:
        raise DocumentError(f"{approval.id} is a {approval.kind}; only approvals can be revoked")
    return Document(
        kind=Kind.REVOCATION,
        id=new_id(Kind.REVOCATION, now),
        request_id=approval.request_id,
        machine_id=approval.machine_id,
        user=approval.user,
        uid=approval.uid,
        device=approval.device,
        folder=approval.folder,
        version=approval.version,
        issued_at=int(now),
        nonce=new_nonce(),
        approver=approver_fpr.replace(" ", "").upper(),
        reason=reason,
        revokes=approval.id,
    )


# --- the key and the seal ------------------------------------------------------------------


def _label(key: ColonKey) -> str:
    return f"{key.fingerprint} ({key.uids[0]})" if key.uids else key.fingerprint


def _usable(key: ColonKey) -> bool:
    return key.can_sign and not (key.revoked or key.expired)


def signing_key(gpg: Gpg, key_fpr: str | None = None) -> str:
    """The primary fingerprint to sign with: `key_fpr` (a full fingerprint of a primary key or
    one of its subkeys) if IT holds its secret key, else the only usable secret signing key."""
    keys = gpg.secret_keys()
    if key_fpr is not None:
        wanted = normalize_fpr(key_fpr)
        for key in keys:
            if wanted == key.fingerprint or wanted in {sub.fingerprint for sub in key.subkeys}:
                if not _usable(key):
                    raise SigningError(f"key {key.fingerprint} cannot sign (revoked or expired)")
                return key.fingerprint
        raise SigningError(f"there is no secret key {wanted} in this GnuPG home")
    usable = [key for key in keys if _usable(key)]
    if not usable:
        raise SigningError(
            "there is no usable secret signing key in this GnuPG home "
            "(check GNUPGHOME, or create one: see the README)"
        )
    if len(usable) > 1:
        names = "; ".join(_label(key) for key in usable)
        raise SigningError(f"several secret keys can sign, choose one with --key: {names}")
    return usable[0].fingerprint


def seal(doc: Document, gpg: Gpg, key_fpr: str | None = None) -> bytes:
    """Sign `doc` with IT's key and return the envelope bytes for the exchange.

    The key is `key_fpr`, else the document's approver (which the CLI chose with
    `signing_key`: `--key FPR` or the only secret key); either way it must be the approver and
    IT must hold its secret key. The signature is checked before it is returned.
    """
    fpr = signing_key(gpg, key_fpr or doc.approver)
    if fpr != doc.approver:
        raise SigningError(f"the document names approver {doc.approver}, but the key is {fpr}")
    data = canonical(doc)
    armored = gpg.sign_detached(data, fpr)
    try:
        valid = check_signature(parse_status(gpg.verify_detached(data, armored)), frozenset({fpr}))
        check_document(data, valid)
    except Refused as e:
        raise GpgError(f"the signature gpg made does not check out: {e.reason}") from None
    return write_envelope(data, armored)
