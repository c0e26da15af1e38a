"""check_binding: a genuine decision must also be for this machine, user, device and time."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from signing import Access, DeviceRef, Document, Kind, Refused, check_binding

NOW = 1_795_000_000
DAY = 86400
MACHINE = "0f3c9a7d2b8e4c1f9a6d3e2b1c0f9e8d"
DEVICE = DeviceRef("SCHOOL-000123", "0781", "5581")
APPROVAL = Document(
    kind=Kind.APPROVAL,
    id="apr-1",
    request_id="req-1",
    machine_id=MACHINE,
    user="alice",
    uid=1001,
    device=DEVICE,
    issued_at=NOW,
    nonce="505abcfbb89713e703e16437159df9c2",
    approver="0123456789ABCDEF0123456789ABCDEF01234567",
    access=Access.READ_ONLY,
    require_encryption=True,
    not_before=NOW,
    not_after=NOW + DAY,
)
DENIAL = replace(
    APPROVAL,
    kind=Kind.DENIAL,
    id="den-1",
    access=None,
    require_encryption=None,
    not_before=None,
    not_after=None,
    reason="use the shared drive",
)
REVOCATION = replace(DENIAL, kind=Kind.REVOCATION, id="rev-1", revokes="apr-1", reason="lost")


def here(**changes: Any) -> dict[str, Any]:
    facts: dict[str, Any] = {
        "machine_id": MACHINE,
        "user": "alice",
        "uid": 1001,
        "subject": DEVICE,
        "now": NOW + 3600,
        "skew_s": 120,
        "revoked_ids": frozenset(),
        "request_known": True,
        "request_answered_by": None,
    }
    facts.update(changes)
    return facts


def refused(doc: Document, **changes: Any) -> str:
    with pytest.raises(Refused) as caught:
        check_binding(doc, **here(**changes))
    assert "\n" not in caught.value.reason
    return caught.value.reason


def test_a_matching_approval_applies() -> None:
    check_binding(APPROVAL, **here())


def test_usb_ids_from_sysfs_may_be_uppercase() -> None:
    check_binding(APPROVAL, **here(subject=DeviceRef("SCHOOL-000123", "0781", "5581".upper())))


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        (
            {"machine_id": "other-machine"},
            f"approval apr-1 is for machine {MACHINE}, not this one (other-machine)",
        ),
        ({"user": "bob"}, "approval apr-1 is for user alice (uid 1001), not bob (uid 1001)"),
        ({"uid": 1002}, "approval apr-1 is for user alice (uid 1001), not alice (uid 1002)"),
        (
            {"subject": DeviceRef("SCHOOL-000124", "0781", "5581")},
            "approval apr-1 is for the device with serial 'SCHOOL-000123', not 'SCHOOL-000124'",
        ),
        (
            {"subject": DeviceRef("SCHOOL-000123", "46f4", "5581")},
            "approval apr-1 is for a 0781:5581 device, not 46f4:5581",
        ),
        (
            {"subject": DeviceRef("SCHOOL-000123", "0781", "0001")},
            "approval apr-1 is for a 0781:5581 device, not 0781:0001",
        ),
        (
            {"subject": DeviceRef("", "0781", "5581")},
            "approval apr-1 cannot apply: the device reports no serial number",
        ),
        (
            {"now": NOW - 121},
            "approval apr-1 is not valid yet: it starts at 2026-11-18 11:06:40 UTC",
        ),
        ({"now": NOW + DAY + 121}, "approval apr-1 expired at 2026-11-19 11:06:40 UTC"),
        ({"revoked_ids": frozenset({"apr-1"})}, "approval apr-1 has been revoked"),
        (
            {"request_known": False},
            "approval apr-1 answers request req-1, which this machine never made",
        ),
        (
            {"request_answered_by": "den-9"},
            "approval apr-1 answers request req-1, which was already answered by den-9",
        ),
    ],
)
def test_approval_refusals(changes: dict[str, Any], reason: str) -> None:
    assert refused(APPROVAL, **changes) == reason


def test_clock_skew_is_allowed_at_both_ends() -> None:
    check_binding(APPROVAL, **here(now=NOW - 120))
    check_binding(APPROVAL, **here(now=NOW + DAY + 120))
    assert "not valid yet" in refused(APPROVAL, now=NOW - 1, skew_s=0)
    assert "expired" in refused(APPROVAL, now=NOW + DAY + 1, skew_s=0)


def test_the_same_decision_read_again_is_fine() -> None:
    check_binding(APPROVAL, **here(request_answered_by="apr-1"))


def test_denials_are_bound_but_have_no_window() -> None:
    check_binding(DENIAL, **here(now=NOW + 400 * DAY))
    assert refused(DENIAL, user="bob").startswith("denial den-1 is for user alice")
    assert "serial" in refused(DENIAL, subject=DeviceRef("X", "0781", "5581"))
    assert "already answered by apr-1" in refused(DENIAL, request_answered_by="apr-1")
    assert "never made" in refused(DENIAL, request_known=False)


def test_revocations_only_need_the_machine() -> None:
    check_binding(
        REVOCATION,
        **here(user="bob", request_known=False, request_answered_by="apr-1", now=0),
    )
    assert refused(REVOCATION, machine_id="m2").startswith("revocation rev-1 is for machine")


def test_replayed_after_revocation() -> None:
    """The revocation's `revokes` id goes into the revoked set; the approval no longer applies."""
    revoked = {REVOCATION.revokes or ""}
    assert refused(APPROVAL, revoked_ids=revoked) == "approval apr-1 has been revoked"
