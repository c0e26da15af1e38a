"""guard-admin's exception commands: review requests, approve or deny them with IT's own GPG
key, list and revoke approvals, and manage the approvers each machine trusts.

Everything goes through the exchange folder (the config's `exchange_dir`), so IT can work from
their own machine with the share mounted; the daemon honours only what it verifies.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from guardd.cli.common import EXIT_OK, print_json, safe
from guardd.cli.requests import print_requests
from guardd.config import DEFAULT_CONFIG, DaemonConfig, load_config
from guardd.errors import ErrorCode, GuarddError
from guardd.exceptions.requests import parse_duration
from guardd.exchange.spool import Spool, SpoolError
from signing import (
    Document,
    Gpg,
    Kind,
    SigningError,
    add_key,
    list_keys,
    make_approval,
    make_denial,
    make_revocation,
    remove_key,
    seal,
    signing_key,
    subject,
    unverified_document,
)

FOLDER = {Kind.APPROVAL: "approvals", Kind.DENIAL: "denials", Kind.REVOCATION: "revocations"}


def _config(args: argparse.Namespace) -> DaemonConfig:
    return load_config(args.config or DEFAULT_CONFIG)


def _spool(config: DaemonConfig) -> Spool:
    spool = Spool(config.exchange)
    try:
        spool.check_root()
    except SpoolError as e:
        raise GuarddError(ErrorCode.UNAVAILABLE, str(e)) from None
    return spool


def _decisions(spool: Spool) -> list[Document]:
    """IT's decisions in the exchange, as their documents say (not verified: for listing)."""
    found = []
    for folder in FOLDER.values():
        for entry in spool.read_all(folder):
            if entry.document is None:
                continue
            try:
                found.append(unverified_document(json.dumps(entry.document).encode()))
            except SigningError:
                continue
    return found


def _requests(spool: Spool) -> list[dict[str, Any]]:
    """Requests from the exchange with where each stands, oldest first."""
    decisions = _decisions(spool)
    revoked = {d.revokes for d in decisions if d.kind is Kind.REVOCATION}
    now = time.time()
    listed = []
    for entry in spool.read_all("requests"):
        doc = entry.document
        if doc is None or not isinstance(doc.get("id"), str):
            continue
        answer = next(
            (d for d in decisions if d.request_id == doc["id"] and d.kind is not Kind.REVOCATION),
            None,
        )
        listed.append({**_request_view(doc), **_standing(answer, revoked, now)})
    return sorted(listed, key=lambda r: float(r.get("created") or 0))


def _request_view(doc: dict[str, Any]) -> dict[str, Any]:
    keys = (
        "id",
        "user",
        "uid",
        "machine_id",
        "device",
        "folder",
        "reason",
        "duration_s",
        "read_only",
        "created",
    )
    return {k: doc.get(k) for k in keys if k in doc}


def _standing(answer: Document | None, revoked: set[str | None], now: float) -> dict[str, Any]:
    if answer is None:
        return {"state": "pending", "detail": "", "until": None}
    if answer.kind is Kind.DENIAL:
        return {"state": "denied", "detail": answer.reason or "", "until": None}
    if answer.id in revoked:
        return {"state": "revoked", "detail": answer.id, "until": answer.not_after}
    if (answer.not_after or 0) <= now:
        return {"state": "expired", "detail": answer.id, "until": answer.not_after}
    return {"state": "approved", "detail": answer.id, "until": answer.not_after}


def _find_request(spool: Spool, request_id: str) -> dict[str, Any]:
    for request in _requests(spool):
        if request["id"] == request_id:
            return request
    raise GuarddError(ErrorCode.NOT_FOUND, f"there is no request {request_id!r} in the exchange")


def cmd_requests(args: argparse.Namespace) -> int:
    """List requests (or show one) with where they stand."""
    spool = _spool(_config(args))
    requests = _requests(spool)
    if args.words:
        if len(args.words) != 2 or args.words[0] != "show":
            raise GuarddError(ErrorCode.INVALID_ARGUMENT, "say `requests` or `requests show ID`")
        requests = [_find_request(spool, args.words[1])]
    if args.json:
        print_json(requests)
    else:
        print_requests(requests, with_user=True)
    return EXIT_OK


def _gpg() -> Gpg:
    return Gpg()  # IT's own keyring: $GNUPGHOME, never the daemon's


def _publish(spool: Spool, doc: Document, key: str | None) -> None:
    envelope = seal(doc, _gpg(), key)
    spool.write(FOLDER[doc.kind], doc.id, json.loads(envelope))


def cmd_approve(args: argparse.Namespace) -> int:
    """Approve a pending request: sign it with IT's key, put it in the exchange."""
    spool = _spool(_config(args))
    request = _pending(spool, args.id)
    duration = (
        parse_duration(args.duration) if args.duration else int(request["duration_s"] or 86400)
    )
    read_only = args.read_only or bool(request.get("read_only"))
    fpr = signing_key(_gpg(), args.key)
    doc = make_approval(
        request,
        approver_fpr=fpr,
        duration_s=duration,
        read_only=read_only,
        require_encryption=not args.allow_unencrypted,
        now=time.time(),
    )
    _publish(spool, doc, fpr)
    until = time.strftime("%Y-%m-%d %H:%M", time.localtime(doc.not_after or 0))
    print(f"approved {args.id} as {doc.id}: until {until}{', read-only' if read_only else ''}")
    return EXIT_OK


def cmd_deny(args: argparse.Namespace) -> int:
    """Deny a pending request, with the reason the member of staff will read."""
    spool = _spool(_config(args))
    request = _pending(spool, args.id)
    fpr = signing_key(_gpg(), args.key)
    doc = make_denial(request, approver_fpr=fpr, reason=args.reason, now=time.time())
    _publish(spool, doc, fpr)
    print(f"denied {args.id}: {doc.reason}")
    return EXIT_OK


def _pending(spool: Spool, request_id: str) -> dict[str, Any]:
    request = _find_request(spool, request_id)
    if request["state"] != "pending":
        raise GuarddError(ErrorCode.INVALID_ARGUMENT, f"{request_id} is already {request['state']}")
    return request


def _subject_json(doc: Document) -> dict[str, object]:
    """The device or the folder a decision is about, as the listing shows it."""
    if doc.folder is not None:
        return {"folder": {"path": doc.folder.path, "provider": doc.folder.provider}}
    assert doc.device is not None  # a Document has exactly one subject
    d = doc.device
    return {"device": {"serial": d.serial, "vendor_id": d.vendor_id, "product_id": d.product_id}}


def cmd_approvals(args: argparse.Namespace) -> int:
    """List approvals and whether each is in force."""
    spool = _spool(_config(args))
    decisions = _decisions(spool)
    revoked = {d.revokes for d in decisions if d.kind is Kind.REVOCATION}
    now = time.time()
    rows = [
        {
            "id": d.id,
            "request": d.request_id,
            "user": d.user,
            "machine_id": d.machine_id,
            **_subject_json(d),
            "access": d.access.value if d.access else None,
            "until": d.not_after,
            "state": _standing(d, revoked, now)["state"],
            "about": subject(d),
        }
        for d in decisions
        if d.kind is Kind.APPROVAL
    ]
    if args.json:
        print_json(rows)
    elif not rows:
        print("No approvals.")
    for row in [] if args.json else rows:
        until = time.strftime("%Y-%m-%d %H:%M", time.localtime(row["until"] or 0))
        print(
            f"{row['id']}: {row['state']} until {until}, {row['access'] or 'unblocked'}, "
            f"for {safe(row['user'])} ({safe(row['about'])}), request {row['request']}"
        )
    return EXIT_OK


def cmd_revoke(args: argparse.Namespace) -> int:
    """Revoke an approval: the device is switched off when the machine picks it up."""
    spool = _spool(_config(args))
    approval = next(
        (d for d in _decisions(spool) if d.kind is Kind.APPROVAL and d.id == args.id), None
    )
    if approval is None:
        raise GuarddError(ErrorCode.NOT_FOUND, f"there is no approval {args.id!r} in the exchange")
    fpr = signing_key(_gpg(), args.key)
    doc = make_revocation(approval, approver_fpr=fpr, reason=args.reason, now=time.time())
    _publish(spool, doc, fpr)
    print(f"revoked {args.id}")
    return EXIT_OK


def cmd_keys(args: argparse.Namespace) -> int:
    """Manage the approvers this machine's guardd trusts (pinned by full fingerprint)."""
    folder = _config(args).approvers
    if args.keys_command == "add":
        folder.mkdir(parents=True, exist_ok=True, mode=0o755)
        fpr = add_key(folder, Path(args.file).read_bytes())
        print(f"trusted {fpr}; run `guard-admin reload` (or restart guardd) to use it")
    elif args.keys_command == "remove":
        remove_key(folder, args.fpr)
        print(f"no longer trusted: {args.fpr}")
    else:
        keys = list_keys(folder) if folder.is_dir() else []
        for key in keys:
            state = "revoked" if key.revoked else "expired" if key.expired else "valid"
            print(f"{key.fpr}  {state}  {', '.join(safe(u, 80) for u in key.uids)}")
        if not keys:
            print("No trusted approvers: no approval can be honoured on this machine.")
    return EXIT_OK


def add_parsers(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """The exception commands of guard-admin."""
    requests = commands.add_parser("requests", help="staff's exception requests")
    requests.add_argument("words", nargs="*", metavar="show ID", help="one request")
    requests.add_argument("--json", action="store_true", help="print JSON")
    requests.set_defaults(func=cmd_requests)
    approve = commands.add_parser("approve", help="approve a request (signs with your GPG key)")
    approve.add_argument("id", metavar="ID")
    approve.add_argument(
        "--for", dest="duration", help="how long: 90m, 8h, 2d, 1w (default: as asked)"
    )
    approve.add_argument("--read-only", action="store_true", help="reading only")
    approve.add_argument(
        "--allow-unencrypted", action="store_true", help="do not require encryption"
    )
    approve.add_argument("--key", help="the signing key's fingerprint (default: your only one)")
    approve.set_defaults(func=cmd_approve)
    deny = commands.add_parser("deny", help="deny a request")
    deny.add_argument("id", metavar="ID")
    deny.add_argument("--reason", required=True, help="what the member of staff will read")
    deny.add_argument("--key", help="the signing key's fingerprint")
    deny.set_defaults(func=cmd_deny)
    approvals = commands.add_parser("approvals", help="approvals and whether they are in force")
    approvals.add_argument("--json", action="store_true", help="print JSON")
    approvals.set_defaults(func=cmd_approvals)
    revoke = commands.add_parser("revoke", help="revoke an approval")
    revoke.add_argument("id", metavar="ID")
    revoke.add_argument(
        "--reason", default="revoked by IT", help="what the member of staff will read"
    )
    revoke.add_argument("--key", help="the signing key's fingerprint")
    revoke.set_defaults(func=cmd_revoke)
    keys = commands.add_parser("keys", help="the approvers this machine trusts")
    sub = keys.add_subparsers(dest="keys_command", required=True, metavar="COMMAND")
    add = sub.add_parser("add", help="trust a public key (FILE.asc)")
    add.add_argument("file", metavar="FILE")
    sub.add_parser("list", help="the trusted approvers")
    remove = sub.add_parser("remove", help="stop trusting a key")
    remove.add_argument("fpr", metavar="FPR")
    keys.set_defaults(func=cmd_keys)
