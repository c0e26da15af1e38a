"""The daemon's book of exceptions: requests staff make, and where each stands."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from guardd.audit import AuditLog
from guardd.cloud.folder import CloudFolder, FolderState
from guardd.devices.state import DeviceState
from guardd.errors import ErrorCode, GuarddError
from guardd.exceptions.requests import Request, RequestState, clean_reason, parse_duration
from guardd.exchange.spool import Spool, SpoolError, new_id
from guardd.ipc.server import Peer
from guardd.store.db import Store, StoredRequest

KIND = "requests"
# What an approval may lift: a drive not issued by the school, or one not encrypted.
OVERRIDABLE_RULES = frozenset({"default:not-enrolled", "policy:require_encryption"})


class ExceptionBook:
    """Requests: made through the socket, kept in the store, exported to the exchange."""

    def __init__(
        self,
        store: Store,
        spool: Spool,
        audit: AuditLog,
        clock: Callable[[], float],
        machine_id: str,
    ) -> None:
        self._store = store
        self._spool = spool
        self._audit = audit
        self._clock = clock
        self.machine_id = machine_id

    def request(
        self, peer: Peer, device: DeviceState | None, args: dict[str, Any]
    ) -> dict[str, Any]:
        """A member of staff asks for an exception for a device they see blocked."""
        if device is None:
            raise GuarddError(ErrorCode.NOT_FOUND, "there is no such device connected now")
        _eligible(device)
        facts = {
            "id": device.facts.id,
            "serial": device.facts.serial,
            "vendor_id": device.facts.vendor_id,
            "product_id": device.facts.product_id,
            "product": " ".join(x for x in (device.facts.manufacturer, device.facts.product) if x),
        }
        return self._make(peer, "device", facts, ("serial", "vendor_id", "product_id"), args)

    def request_folder(
        self, peer: Peer, folder: CloudFolder | None, args: dict[str, Any]
    ) -> dict[str, Any]:
        """A member of staff asks for an exception for their own blocked sync folder."""
        if folder is None or folder.owner_uid != peer.uid:
            raise GuarddError(ErrorCode.NOT_FOUND, "you have no such cloud folder on this machine")
        if folder.state not in (FolderState.BLOCKED, FolderState.FAILED):
            raise GuarddError(ErrorCode.INVALID_ARGUMENT, "this folder is not blocked")
        found = folder.found
        subject = {
            "path": found.path,
            "provider": found.provider,
            "name": found.name,
            "account": found.account,
            "server": found.server,
            "dev": folder.dev,  # the approval will be honoured for this very folder only
            "ino": folder.ino,
        }
        return self._make(peer, "folder", subject, ("path", "provider", "dev", "ino"), args)

    def _make(
        self,
        peer: Peer,
        kind: str,
        subject: dict[str, Any],
        same: tuple[str, ...],
        args: dict[str, Any],
    ) -> dict[str, Any]:
        reason = clean_reason(args.get("reason"))
        duration = parse_duration(str(args.get("duration", "1d")))
        read_only = kind == "device" and args.get("read_only", False) is True
        existing = self._pending_for(peer.uid, kind, subject, same)
        if existing is not None:
            return self.view(existing)
        now = self._clock()
        request = Request(
            new_id("req", now),
            peer.uid,
            peer.user,
            self.machine_id,
            subject,
            reason,
            duration,
            read_only,
            now,
            kind,
        )
        self._store.add_request(request.id, peer.uid, request.document(), now)
        doc = request.document()
        self._export(request.id, doc)
        keys = ("id", "uid", "user", kind, "reason", "duration_s", "read_only")
        self._audit.append("request.created", {k: doc[k] for k in keys})
        return self.view(
            StoredRequest(request.id, peer.uid, doc, now, RequestState.PENDING, "", None)
        )

    def _pending_for(
        self, uid: int, kind: str, subject: dict[str, Any], keys: tuple[str, ...]
    ) -> StoredRequest | None:
        for stored in self._store.requests(uid):
            recorded = stored.document.get(kind)
            if not isinstance(recorded, dict) or stored.state != RequestState.PENDING:
                continue
            if all(recorded.get(k) == subject[k] for k in keys):
                return stored
        return None

    def views(self, uid: int | None) -> list[dict[str, Any]]:
        """Requests as the CLIs show them: a user's own, or (for IT) everyone's."""
        return [self.view(r) for r in self._store.requests(uid)]

    def view(self, stored: StoredRequest) -> dict[str, Any]:
        """One request with where it stands."""
        doc = stored.document
        return {
            "id": stored.id,
            "user": doc.get("user"),
            "uid": stored.uid,
            "device": doc.get("device"),
            "folder": doc.get("folder"),
            "reason": doc.get("reason"),
            "duration_s": doc.get("duration_s"),
            "read_only": doc.get("read_only"),
            "created": stored.created,
            "state": stored.state,
            "detail": stored.detail,
            "until": stored.until,
        }

    def _export(self, request_id: str, document: dict[str, Any]) -> bool:
        """Put a request in the exchange; when it cannot be reached the request stays pending
        in the store and is sent again at the next start."""
        try:
            self._spool.write(KIND, request_id, document)
        except SpoolError as e:
            self._audit.append("request.export_failed", {"id": request_id, "error": str(e)})
            return False
        return True

    def export_pending(self) -> int:
        """Write pending requests the exchange lost (a kill -9 between store and spool, or a
        share that was not reachable)."""
        try:
            present = {e.name for e in self._spool.read_all(KIND)}
        except SpoolError as e:
            self._audit.append("request.export_failed", {"id": None, "error": str(e)})
            return 0
        pending = [r for r in self._store.requests() if r.state == RequestState.PENDING]
        missing = [r for r in pending if f"{r.id}.json" not in present]
        return sum(self._export(r.id, r.document) for r in missing)


def _eligible(device: DeviceState) -> None:
    decision = device.decision
    if decision.allowed:
        raise GuarddError(ErrorCode.INVALID_ARGUMENT, "this device is already allowed")
    if decision.suspicious:
        raise GuarddError(
            ErrorCode.INVALID_ARGUMENT,
            "this device cannot be given an exception: it behaves like a malicious USB device",
        )
    if not device.facts.serial:
        raise GuarddError(
            ErrorCode.INVALID_ARGUMENT,
            "this device has no serial number, so an exception could not be tied to it",
        )
    if decision.rule not in OVERRIDABLE_RULES:
        raise GuarddError(
            ErrorCode.INVALID_ARGUMENT, f"an exception cannot lift this block ({decision.reason})"
        )
