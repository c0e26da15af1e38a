"""Building decisions from a request (pure: no gpg)."""

from __future__ import annotations

from typing import Any

import pytest

from signing import Access, DeviceRef, DocumentError, Kind, canonical, parse
from signing.sign import make_approval, make_denial, make_revocation, new_id

FPR = "0123456789ABCDEF0123456789ABCDEF01234567"
NOW = 1_795_000_000.7
REQUEST: dict[str, Any] = {
    "id": "req-20261122-080000-0011aabb",
    "machine_id": "0f3c9a7d2b8e4c1f9a6d3e2b1c0f9e8d",
    "user": "alice",
    "uid": 1001,
    "device": {"serial": "SCHOOL-000123", "vendor_id": "0781", "product_id": "55AA"},
    "reason": "governors' papers",  # other request fields are ignored
    "state": "pending",
}


def test_make_approval() -> None:
    doc = make_approval(
        REQUEST,
        approver_fpr=FPR.lower(),
        duration_s=2 * 86400,
        read_only=True,
        now=NOW,
        note="until the meeting",
    )
    assert doc.kind is Kind.APPROVAL
    assert doc.id.startswith("apr-20261118-")
    assert doc.request_id == REQUEST["id"]
    assert doc.device == DeviceRef("SCHOOL-000123", "0781", "55aa")
    assert (doc.not_before, doc.not_after, doc.issued_at) == (
        1_795_000_000,
        1_795_172_800,
        1_795_000_000,
    )
    assert doc.access is Access.READ_ONLY
    assert doc.require_encryption is True
    assert doc.approver == FPR
    assert doc.reason == "until the meeting"
    assert len(doc.nonce) == 32
    assert parse(canonical(doc)) == doc


def test_approvals_differ_by_id_and_nonce() -> None:
    first, second = (
        make_approval(REQUEST, approver_fpr=FPR, duration_s=60, read_only=False, now=NOW)
        for _ in range(2)
    )
    assert first.id != second.id
    assert first.nonce != second.nonce
    assert first.access is Access.READ_WRITE


@pytest.mark.parametrize("duration", [0, -5, 367 * 86400])
def test_duration_bounds(duration: int) -> None:
    with pytest.raises(DocumentError, match="between 1 second and 366 days"):
        make_approval(REQUEST, approver_fpr=FPR, duration_s=duration, read_only=True, now=NOW)


@pytest.mark.parametrize(
    ("request_", "expected"),
    [
        ({k: v for k, v in REQUEST.items() if k != "machine_id"}, "has no 'machine_id'"),
        ({**REQUEST, "uid": "1001"}, "'uid' is not an integer"),
        ({**REQUEST, "device": "x"}, "'device' is not an object"),
        ({**REQUEST, "device": {"serial": None}}, "needs a serial, a vendor_id and a product_id"),
        ({**REQUEST, "user": 7}, "must be strings"),
        ({**REQUEST, "id": "REQ 1"}, "request_id must be 1 to 64 characters"),
    ],
)
def test_bad_requests(request_: dict[str, Any], expected: str) -> None:
    with pytest.raises(DocumentError, match=expected):
        make_denial(request_, approver_fpr=FPR, reason="no", now=NOW)


def test_denial_and_revocation() -> None:
    denial = make_denial(REQUEST, approver_fpr=FPR, reason="use the shared drive", now=NOW)
    assert denial.kind is Kind.DENIAL
    assert denial.access is None
    approval = make_approval(REQUEST, approver_fpr=FPR, duration_s=60, read_only=True, now=NOW)
    revocation = make_revocation(approval, approver_fpr=FPR, reason="stick lost", now=NOW + 30)
    assert revocation.revokes == approval.id
    assert (revocation.machine_id, revocation.user, revocation.device) == (
        approval.machine_id,
        approval.user,
        approval.device,
    )
    with pytest.raises(DocumentError, match="only approvals can be revoked"):
        make_revocation(denial, approver_fpr=FPR, reason="x", now=NOW)
    with pytest.raises(DocumentError, match="reason must not be empty"):
        make_denial(REQUEST, approver_fpr=FPR, reason="", now=NOW)


def test_ids_sort_by_time() -> None:
    assert new_id(Kind.DENIAL, 0).startswith("den-19700101-000000-")
    assert new_id(Kind.REVOCATION, 0) < new_id(Kind.REVOCATION, 1)
