"""The decision document: canonical form, strict parsing, and every refusal."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest

from signing import (
    Access,
    DeviceRef,
    Document,
    DocumentError,
    FolderRef,
    Kind,
    canonical,
    describe,
    parse,
)
from signing.document import MAX_WINDOW_S

FPR = "0123456789ABCDEF0123456789ABCDEF01234567"
NOW = 1_795_000_000


def approval(**changes: Any) -> Document:
    doc = Document(
        kind=Kind.APPROVAL,
        id="apr-20261122-085302-d990e84f",
        request_id="req-20261122-080000-0011aabb",
        machine_id="0f3c9a7d2b8e4c1f9a6d3e2b1c0f9e8d",
        user="alice",
        uid=1001,
        device=DeviceRef("SCHOOL-000123", "0781", "5581"),
        issued_at=NOW,
        nonce="505abcfbb89713e703e16437159df9c2",
        approver=FPR,
        access=Access.READ_ONLY,
        require_encryption=True,
        not_before=NOW,
        not_after=NOW + 86400,
    )
    return replace(doc, **changes)


def as_obj(doc: Document) -> dict[str, Any]:
    obj: dict[str, Any] = json.loads(canonical(doc))
    return obj


def encode(obj: object) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def refusal(raw: bytes) -> str:
    with pytest.raises(DocumentError) as caught:
        parse(raw)
    message = str(caught.value)
    assert "\n" not in message
    return message


# --- canonical form and round trip ---------------------------------------------------------


def test_canonical_is_sorted_compact_utf8() -> None:
    doc = approval(reason="governors' papers from the clerk — Zoë")
    raw = canonical(doc)
    text = raw.decode("utf-8")
    assert " " not in text.replace("governors' papers from the clerk — Zoë", "")
    assert "Zoë" in text  # not \u escaped
    assert list(json.loads(raw)) == sorted(json.loads(raw))
    assert text.startswith('{"access":"read-only","approver":"0123')
    assert text.endswith('"uid":1001,"user":"alice","version":1}')


def test_round_trip_for_every_kind() -> None:
    docs = [
        approval(),
        approval(access=Access.READ_WRITE, require_encryption=False, reason="a note"),
        approval(
            kind=Kind.DENIAL,
            access=None,
            require_encryption=None,
            not_before=None,
            not_after=None,
            reason="use the shared drive",
        ),
        approval(
            kind=Kind.REVOCATION,
            id="rev-20261123-000000-00000000",
            access=None,
            require_encryption=None,
            not_before=None,
            not_after=None,
            reason="stick lost",
            revokes="apr-20261122-085302-d990e84f",
        ),
    ]
    for doc in docs:
        raw = canonical(doc)
        assert parse(raw) == doc
        assert canonical(parse(raw)) == raw


def test_absent_fields_are_left_out_not_null() -> None:
    obj = as_obj(approval())
    assert "reason" not in obj
    assert "revokes" not in obj
    assert obj["device"] == {"product_id": "5581", "serial": "SCHOOL-000123", "vendor_id": "0781"}


def test_read_only_and_describe() -> None:
    assert approval().read_only
    assert not approval(access=Access.READ_WRITE).read_only
    assert describe(approval()) == (
        "approval apr-20261122-085302-d990e84f for request req-20261122-080000-0011aabb: "
        "user alice on 0f3c9a7d2b8e4c1f9a6d3e2b1c0f9e8d, device 0781:5581 serial 'SCHOOL-000123'"
    )


# --- refusals ------------------------------------------------------------------------------


def with_field(name: str, value: object) -> bytes:
    obj = as_obj(approval())
    obj[name] = value
    return encode(obj)


def without_field(name: str) -> bytes:
    obj = as_obj(approval())
    del obj[name]
    return encode(obj)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (with_field("colour", "blue"), "unknown field 'colour'"),
        (with_field("version", 3), "document version 3 is not known"),
        (with_field("version", 2), "field 'folder' is missing"),
        (
            with_field("folder", {"path": "/home/alice/Dropbox", "provider": "dropbox"}),
            "exactly one device or one folder",
        ),
        (with_field("version", "1"), "no integer 'version'"),
        (without_field("version"), "no integer 'version'"),
        (with_field("kind", "grant"), "kind must be one of 'approval', 'denial', 'revocation'"),
        (with_field("kind", 3), "field 'kind' must be a string"),
        (without_field("kind"), "field 'kind' is missing"),
        (with_field("uid", "1001"), "field 'uid' must be an integer"),
        (with_field("uid", True), "field 'uid' must be an integer"),
        (with_field("uid", -1), "uid -1 is out of range"),
        (with_field("issued_at", 1.5), "field 'issued_at' must be an integer"),
        (with_field("issued_at", 1 << 40), "issued_at 1099511627776 is not a plausible time"),
        (with_field("require_encryption", "yes"), "'require_encryption' must be true or false"),
        (with_field("require_encryption", None), "'require_encryption' must be true or false"),
        (with_field("reason", None), "field 'reason' must be a string"),
        (with_field("device", "SCHOOL-000123"), "field 'device' must be an object"),
        (without_field("device"), "field 'device' is missing"),
        (without_field("nonce"), "field 'nonce' is missing"),
        (with_field("access", "admin"), "access must be one of 'read-only', 'read-write'"),
        (with_field("id", "APR_1"), "id must be 1 to 64 characters"),
        (with_field("id", ""), "id must be 1 to 64 characters"),
        (with_field("id", "-rf"), "id must be 1 to 64 characters"),
        (with_field("id", "a" * 65), "id must be 1 to 64 characters"),
        (with_field("request_id", "../etc/passwd"), "request_id must be 1 to 64 characters"),
        (with_field("machine_id", "a b"), "machine_id must be 1 to 64 characters"),
        (with_field("user", ""), "user must not be empty"),
        (with_field("user", "alice\nbob"), "user contains a control or non-printable character"),
        (with_field("nonce", "00"), "nonce must be 32 lowercase hex digits"),
        (with_field("approver", FPR.lower()), "approver must be a full fingerprint"),
        (with_field("approver", FPR[-16:]), "approver must be a full fingerprint"),
        (with_field("not_after", 1_795_000_000), "not_after must be later than not_before"),
        (with_field("not_after", 1_794_000_000), "not_after must be later than not_before"),
        (
            with_field("not_after", NOW + MAX_WINDOW_S + 1),
            "the approval window is 366 days long; at most 366 are allowed",
        ),
        (with_field("not_after", NOW + 5 * 365 * 86400), "window is 1825 days long"),
        (without_field("not_after"), "an approval needs 'not_after'"),
        (without_field("access"), "an approval needs 'access'"),
        (with_field("revokes", "apr-1"), "field 'revokes' does not belong in a approval"),
        (with_field("reason", "x" * 501), "reason is 501 characters long; at most 500"),
        (with_field("reason", "line one\nline two"), "reason contains a control"),
    ],
)
def test_refusals(raw: bytes, expected: str) -> None:
    assert expected in refusal(raw)


@pytest.mark.parametrize(
    ("device", "expected"),
    [
        ({"serial": "S", "vendor_id": "0781"}, "field device.product_id is missing"),
        ({"serial": "S", "vendor_id": "0781", "product_id": "5581", "x": 1}, "device.x"),
        ({"serial": 5, "vendor_id": "0781", "product_id": "5581"}, "device.serial must be a"),
        ({"serial": "S", "vendor_id": "0781", "product_id": "55AB"}, "device.product_id must be"),
        ({"serial": "S", "vendor_id": "781", "product_id": "5581"}, "device.vendor_id must be"),
        ({"serial": "", "vendor_id": "0781", "product_id": "5581"}, "device.serial must not"),
        ({"serial": "S\x00", "vendor_id": "0781", "product_id": "5581"}, "U+0000"),
        ({"serial": "S" * 127, "vendor_id": "0781", "product_id": "5581"}, "at most 126"),
    ],
)
def test_device_refusals(device: dict[str, object], expected: str) -> None:
    assert expected in refusal(with_field("device", device))


def test_denial_needs_a_reason_and_no_window() -> None:
    obj = {
        k: v
        for k, v in as_obj(approval()).items()
        if k not in ("access", "require_encryption", "not_before", "not_after")
    }
    obj["kind"] = "denial"
    assert refusal(encode(obj)) == "a denial needs a reason"
    obj["reason"] = "no"
    assert parse(encode(obj)).kind is Kind.DENIAL
    obj["access"] = "read-only"
    assert refusal(encode(obj)) == "field 'access' does not belong in a denial"


def test_revocation_needs_revokes() -> None:
    obj = {
        k: v
        for k, v in as_obj(approval()).items()
        if k not in ("access", "require_encryption", "not_before", "not_after")
    }
    obj.update(kind="revocation", reason="lost")
    assert refusal(encode(obj)) == "a revocation needs 'revokes' (the approval id)"
    obj["revokes"] = "APR!"
    assert "revokes must be 1 to 64 characters" in refusal(encode(obj))


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b"not json", "the document is not valid JSON"),
        (b"[1, 2]", "the document is not a JSON object"),
        (b"\xff\xfe{}", "the document is not valid UTF-8"),
        (b'{"version": 1, "version": 1}', "field 'version' appears twice"),
        (b'{"version": NaN}', "NaN is not a valid number"),
        (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
        (b'{"uid": ' + b"9" * 5000 + b"}", "the document is not usable JSON (Exceeds the limit"),
    ],
)
def test_not_a_document(raw: bytes, expected: str) -> None:
    assert expected in refusal(raw)


def test_lone_surrogate_is_refused() -> None:
    obj = as_obj(approval())
    raw = encode(obj).replace(b'"alice"', b'"\\ud800"')
    assert "non-printable character (U+D800)" in refusal(raw)


def test_building_an_invalid_document_fails_too() -> None:
    with pytest.raises(DocumentError, match="an approval needs 'access'"):
        approval(access=None)
    with pytest.raises(DocumentError, match="document version 3 is not known"):
        approval(version=3)


FOLDER = FolderRef("/home/alice/Dropbox", "dropbox")


def folder_approval(**changes: Any) -> Document:
    """A version 2 approval about a folder: no access or encryption fields."""
    fields = {"device": None, "folder": FOLDER, "version": 2, "access": None}
    return approval(**{"require_encryption": None, **fields, **changes})


def test_a_folder_decision_round_trips_as_version_2() -> None:
    doc = folder_approval()
    obj = as_obj(doc)
    assert obj["version"] == 2
    assert obj["folder"] == {"path": "/home/alice/Dropbox", "provider": "dropbox"}
    assert "device" not in obj
    assert "access" not in obj
    assert parse(canonical(doc)) == doc
    assert "dropbox folder '/home/alice/Dropbox'" in describe(doc)


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"version": 1}, "a decision about a folder is version 2"),
        ({"folder": FolderRef("home/alice/Dropbox", "dropbox")}, "absolute, normalised path"),
        ({"folder": FolderRef("/home/alice/../bob/Dropbox", "dropbox")}, "normalised path"),
        ({"folder": FolderRef("/home/alice/Dropbox", "Drop Box")}, "folder.provider must be"),
        ({"folder": FolderRef("/home/alice/\nDropbox", "dropbox")}, "non-printable"),
        ({"access": Access.READ_WRITE}, "'access' does not belong in an approval for a folder"),
        ({"device": DeviceRef("S", "0781", "5581")}, "exactly one device or one folder"),
    ],
)
def test_folder_documents_are_checked(changes: dict[str, Any], expected: str) -> None:
    with pytest.raises(DocumentError, match=expected):
        folder_approval(**changes)
