"""IT's signed decisions, picked up from the exchange, verified, bound, and honoured.

Every few seconds the exchange's approvals, denials and revocations folders are read; new
files are verified on a worker thread (gpg, with a home holding only the pinned approvers'
keys), then bound on the loop to the request they answer (this machine, that user, that
device, now). Honoured approvals let their device in until they end; the end (expiry or
revocation) switches it off again. Every refusal is in the audit trail with its reason.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from guardd.audit import AuditLog
from guardd.exceptions.requests import RequestState
from guardd.exchange.spool import Spool, SpoolError
from guardd.store.db import Store, StoredRequest
from rules import Decision, DeviceFacts, Found, Verdict
from signing import (
    DeviceRef,
    Document,
    FolderRef,
    Kind,
    Refused,
    SigningError,
    Verifier,
    build_home,
    check_binding,
)

POLL_SECONDS = 2.0
SKEW_SECONDS = 300
WARN_BEFORE_S = 15 * 60
FOLDERS = {"approvals": Kind.APPROVAL, "denials": Kind.DENIAL, "revocations": Kind.REVOCATION}


@dataclass(frozen=True)
class Honoured:
    """An approval in force."""

    document: Document

    @property
    def key(self) -> tuple[str, str, str]:
        """(serial, vendor_id, product_id) of the device it is for; for a folder,
        ("folder", path, provider)."""
        d, f = self.document.device, self.document.folder
        if f is not None:
            return "folder", f.path, f.provider
        assert d is not None  # a Document has exactly one subject
        return d.serial, d.vendor_id, d.product_id

    @property
    def read_only(self) -> bool:
        """Approved for reading only."""
        return self.document.access is not None and self.document.access.value == "read-only"

    def decision(self, label: str) -> Decision:
        """What the device gate says for a device this approval covers."""
        until = time.strftime("%Y-%m-%d %H:%M", time.localtime(self.document.not_after or 0))
        access = "read-only" if self.read_only else "read and write"
        return Decision(
            Verdict.ALLOWED,
            f"approval:{self.document.id}",
            f"allowed: exception approved by IT until {until} ({access})",
            label=label,
        )


class ApprovalBook:
    """Approvals in force, and the poller that finds new decisions in the exchange."""

    def __init__(  # noqa: PLR0913  (the composition root hands each collaborator in)
        self,
        *,
        spool: Spool,
        store: Store,
        audit: AuditLog,
        clock: Callable[[], float],
        machine_id: str,
        keys: Path,
        home: Path,
    ) -> None:
        self._spool = spool
        self._store = store
        self._audit = audit
        self._clock = clock
        self._machine_id = machine_id
        self._keys = keys
        self._home = home
        self._seen: set[str] = set()
        self._honoured: dict[str, Honoured] = {}
        self._revoked: set[str] = set()
        self._verifier: Verifier | None = None
        self.changed: Callable[[], None] = lambda: None  # re-judge devices

    # -- trust ----------------------------------------------------------------------------

    def load_keys(self) -> None:
        """Build the verifier's own gpg home from the trusted approvers' keys."""
        try:
            pinned = build_home(self._keys, self._home)
        except SigningError as e:
            self._verifier = None
            self._audit.append("approvals.keys_failed", {"error": str(e)})
            return
        self._verifier = Verifier(self._home, pinned)
        self._audit.append("approvals.keys_loaded", {"approvers": sorted(pinned)})

    # -- polling (worker thread) ------------------------------------------------------------

    def collect(self) -> list[tuple[str, Document | str]]:
        """New decision files, verified (a Document) or refused (the reason). Worker thread."""
        found: list[tuple[str, Document | str]] = []
        for folder in FOLDERS:
            try:
                entries = list(self._spool.read_all(folder))
            except SpoolError as e:
                found.append((f"{folder}/", str(e)))
                continue
            for entry in entries:
                name = f"{folder}/{entry.name}"
                if name in self._seen:
                    continue
                self._seen.add(name)
                found.append((name, self._verify(entry.document, entry.problem)))
        return found

    def _verify(self, document: dict[str, Any] | None, problem: str) -> Document | str:
        if document is None:
            return problem
        if self._verifier is None:
            return "no trusted approver keys are installed on this machine"
        try:
            raw = _envelope_bytes(document)
            return self._verifier.verify(raw)
        except SigningError as e:
            return str(e)

    # -- applying (loop thread) -------------------------------------------------------------

    def apply(self, found: list[tuple[str, Document | str]]) -> None:
        """Bind and honour what was verified; record every refusal."""
        for name, outcome in found:
            if isinstance(outcome, str):
                self._audit.append("decision.refused", {"file": name, "reason": outcome})
                continue
            try:
                self._apply(outcome)
            except Refused as e:
                self._audit.append(
                    "decision.refused", {"file": name, "id": outcome.id, "reason": e.reason}
                )

    def _apply(self, doc: Document) -> None:
        if doc.kind is Kind.REVOCATION:
            self._bind(doc, None)
            self._revoke(doc)
            return
        request = self._store.request(doc.request_id)
        self._bind(doc, request)
        if doc.kind is Kind.DENIAL:
            self._store.set_request_state(doc.request_id, RequestState.DENIED, doc.reason or "")
            self._audit.append(
                "request.denied", {"id": doc.request_id, "by": doc.approver, "reason": doc.reason}
            )
            return
        self._honour(doc)

    def _bind(self, doc: Document, request: StoredRequest | None) -> None:
        answered = _answered_by(request)
        check_binding(
            doc,
            machine_id=self._machine_id,
            user=str(request.document.get("user")) if request else doc.user,
            uid=request.uid if request else doc.uid,
            subject=_subject(doc, request),
            now=self._clock(),
            skew_s=SKEW_SECONDS,
            revoked_ids=self._revoked,
            request_known=request is not None or doc.kind is Kind.REVOCATION,
            request_answered_by=answered if answered != doc.id else None,
        )

    def _honour(self, doc: Document) -> None:
        self._honoured[doc.id] = Honoured(doc)
        self._store.set_request_state(
            doc.request_id, RequestState.APPROVED, doc.id, float(doc.not_after or 0)
        )
        self._audit.append(
            "approval.honoured",
            {"id": doc.id, "request": doc.request_id, "by": doc.approver, "until": doc.not_after},
        )
        self.changed()

    def _revoke(self, doc: Document) -> None:
        target = doc.revokes or ""
        self._revoked.add(target)
        gone = self._honoured.pop(target, None)
        if gone is not None:
            self._store.set_request_state(
                gone.document.request_id, RequestState.REVOKED, doc.reason or ""
            )
        self._audit.append(
            "approval.revoked", {"id": target, "by": doc.approver, "reason": doc.reason}
        )
        self.changed()

    def expire(self) -> list[str]:
        """End approvals whose time is up; return their ids."""
        now = self._clock()
        ended = [a for a in self._honoured.values() if (a.document.not_after or 0) <= now]
        for approval in ended:
            del self._honoured[approval.document.id]
            self._store.set_request_state(approval.document.request_id, RequestState.EXPIRED)
            self._audit.append("approval.expired", {"id": approval.document.id})
        if ended:
            self.changed()
        return [a.document.id for a in ended]

    def next_end(self) -> float | None:
        """When the next approval ends."""
        ends = [a.document.not_after or 0 for a in self._honoured.values()]
        return min(ends) if ends else None

    def for_device(self, facts: DeviceFacts) -> Honoured | None:
        """The approval in force for this device, if any."""
        return self._in_force((facts.serial or "", facts.vendor_id, facts.product_id))

    def for_folder(self, found: Found, dev: int, ino: int) -> Honoured | None:
        """The approval in force for this very cloud-sync folder, if any: same path and
        provider (signed), and the same folder, account and server as when it was requested
        (recorded here): an approved folder renamed away does not lend its approval to
        another one put in its place. A mount (dev, ino 0) is bound by path and kind only."""
        approval = self._in_force(("folder", found.path, found.provider))
        if approval is None:
            return None
        request = self._store.request(approval.document.request_id)
        asked = request.document.get("folder") if request is not None else None
        if not isinstance(asked, dict):
            return None
        here = {"account": found.account, "server": found.server, "dev": dev, "ino": ino}
        keys = ("account", "server") if dev == 0 else ("account", "server", "dev", "ino")
        return approval if all(asked.get(k) == here[k] for k in keys) else None

    def _in_force(self, key: tuple[str, str, str]) -> Honoured | None:
        now = self._clock()
        for approval in self._honoured.values():
            doc = approval.document
            if approval.key == key and (doc.not_before or 0) - SKEW_SECONDS <= now < (
                doc.not_after or 0
            ):
                return approval
        return None

    def expiring(self, facts: DeviceFacts) -> str:
        """A warning when the device's approval ends soon, else ''."""
        return self._warning(self.for_device(facts))

    def _warning(self, approval: Honoured | None) -> str:
        if approval is None:
            return ""
        left = (approval.document.not_after or 0) - self._clock()
        if left > WARN_BEFORE_S:
            return ""
        return (
            f"your exception ends in {max(1, round(left / 60))} minutes: save your work on it now"
        )


def _subject(doc: Document, request: StoredRequest | None) -> DeviceRef | FolderRef:
    """What the request was about, as guardd recorded it (the document's own subject only
    for revocations, which have no request here)."""
    recorded = request.document if request else {}
    folder = recorded.get("folder")
    if isinstance(folder, dict):
        return FolderRef(str(folder.get("path")), str(folder.get("provider")))
    device = recorded.get("device")
    if isinstance(device, dict):
        return DeviceRef(
            str(device.get("serial")), str(device.get("vendor_id")), str(device.get("product_id"))
        )
    if doc.folder is not None:
        return doc.folder
    assert doc.device is not None  # a Document has exactly one subject
    return doc.device


def _answered_by(request: StoredRequest | None) -> str | None:
    if request is None or request.state == RequestState.PENDING:
        return None
    return request.detail or None


def _envelope_bytes(document: dict[str, Any]) -> bytes:
    """The envelope as bytes again (the spool parsed it; its `document` string is intact)."""
    return json.dumps(document, ensure_ascii=False).encode("utf-8")
