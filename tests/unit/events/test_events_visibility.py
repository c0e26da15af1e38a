"""Who sees which audit record: staff see device events and their own business only."""

from __future__ import annotations

import pytest

from guardd.events import visible

STAFF, OTHER = 1000, 1001

CASES = [
    # (event, data, seen by staff 1000)
    ("device.decision", {"device": "2-1", "verdict": "blocked"}, True),
    ("device.removed", {"device": "2-1"}, True),
    ("volume.decision", {"device": "2-1", "volume": "sdb"}, True),
    ("media.scanned", {"device": "2-1", "scan": {"verdict": "clean"}}, True),
    ("media.ready", {"device": "2-1"}, True),
    ("devices.rejudged", {"cause": "approvals", "changed": 1}, True),
    ("incident.reported", {"device": "2-1", "incident": "inc-1"}, True),
    ("request.created", {"id": "req-1", "uid": STAFF}, True),
    ("request.created", {"id": "req-2", "uid": OTHER}, False),
    ("request.denied", {"id": "req-2", "uid": OTHER, "reason": "no"}, False),
    ("approval.honoured", {"id": "apr-1", "uid": STAFF, "until": 5}, True),
    ("approval.expired", {"id": "apr-1"}, False),  # no owner named: not shown to staff
    ("approval.revoked", {"id": "apr-1", "uid": OTHER}, False),
    ("cloud.blocked", {"path": "/home/a/Dropbox", "owner_uid": STAFF}, True),
    ("cloud.blocked", {"path": "/home/b/Dropbox", "owner_uid": OTHER}, False),
    ("cloud.blocked", {"path": "/home/b/Dropbox"}, False),
    # A device record that names someone else is someone else's.
    ("device.decision", {"device": "2-1", "uid": OTHER}, False),
    # Owners that are not plain non-negative integers are never trusted to match.
    ("request.created", {"uid": str(STAFF)}, False),
    ("request.created", {"uid": float(STAFF)}, False),
    ("request.created", {"uid": True}, False),
    ("request.created", {"uid": STAFF, "owner_uid": OTHER}, False),
    ("request.created", {"uid": -1}, False),
    # IT's own business and anything new: IT only.
    ("rules.reloaded", {"changed": 0}, False),
    ("daemon.started", {"version": "0.1.0"}, False),
    ("approvals.keys_loaded", {"approvers": []}, False),
    ("decision.refused", {"file": "x.json", "reason": "bad"}, False),
    ("request.export_failed", {"id": "req-1", "error": "share gone"}, False),
    ("audit.resumed_after_damage", {"damaged_line": 3}, False),
    ("something.new", {}, False),
    ("devicex.decision", {}, False),
]


@pytest.mark.parametrize(("event", "data", "seen"), CASES)
def test_staff_see_devices_and_only_their_own_business(
    event: str, data: dict[str, object], seen: bool
) -> None:
    assert visible(event, data, STAFF, admin=False) is seen


@pytest.mark.parametrize(("event", "data", "seen"), CASES)
def test_it_see_every_record(event: str, data: dict[str, object], seen: bool) -> None:
    assert visible(event, data, OTHER, admin=True) is True
