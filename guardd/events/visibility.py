"""Who may see which audit record: a pure function of the record and the peer.

Staff see what happens to devices and drives (everyone at the machine sees those anyway) and
only their own requests, approvals and cloud folders; IT see every record. Anything not
named here is for IT only, so a new kind of record is never shown to staff by accident.
"""

from __future__ import annotations

from collections.abc import Mapping

# Records about devices and the drives on them: what staff also see with `guardctl devices`.
PUBLIC_PREFIXES = ("device.", "volume.", "media.", "devices.")
PUBLIC_EVENTS = frozenset({"incident.reported"})
# Records about one person's business: shown to staff only when they carry that person's uid.
OWNED_PREFIXES = ("request.", "approval.", "cloud.")
OWNER_KEYS = ("uid", "owner_uid")


def _is_uid(value: object) -> bool:
    return type(value) is int and value >= 0


def visible(event: str, data: Mapping[str, object], uid: int, admin: bool) -> bool:
    """Whether a record may be sent to the peer `uid` (an IT administrator when `admin`)."""
    if admin:
        return True
    owners = [data[key] for key in OWNER_KEYS if key in data]
    if any(not _is_uid(owner) or owner != uid for owner in owners):
        return False  # someone else's (or a record whose owner cannot be read)
    if event.startswith(OWNED_PREFIXES):
        return bool(owners)
    return event in PUBLIC_EVENTS or event.startswith(PUBLIC_PREFIXES)
