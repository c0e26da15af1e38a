"""Whatever a signed file holds, reading it fails only with the package's own errors, and
every document that parses re-encodes to one canonical form."""

from __future__ import annotations

import contextlib
import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from signing import DocumentError, EnvelopeError, canonical, parse, read_envelope

BASE: dict[str, Any] = {
    "version": 1,
    "kind": "approval",
    "id": "apr-1",
    "request_id": "req-1",
    "machine_id": "m1",
    "user": "alice",
    "uid": 1001,
    "device": {"serial": "S1", "vendor_id": "0781", "product_id": "5581"},
    "issued_at": 1_795_000_000,
    "nonce": "505abcfbb89713e703e16437159df9c2",
    "approver": "0123456789ABCDEF0123456789ABCDEF01234567",
    "access": "read-only",
    "require_encryption": True,
    "not_before": 1_795_000_000,
    "not_after": 1_795_086_400,
}

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from([*BASE, "extra"]), JSON_VALUES, max_size=5), st.data())
def test_mutated_documents_parse_or_are_refused(
    changes: dict[str, Any], data: st.DataObject
) -> None:
    obj = {**BASE, **changes}
    for name in data.draw(st.lists(st.sampled_from(list(BASE)), max_size=2)):
        obj.pop(name, None)
    raw = json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode(
        "utf-8", errors="surrogatepass"
    )
    try:
        doc = parse(raw)
    except DocumentError as e:
        problem = str(e)
    else:
        assert parse(canonical(doc)) == doc
        assert canonical(doc) == raw
        return
    assert "\n" not in problem


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300) | st.text(max_size=300).map(lambda t: t.encode()))
def test_random_bytes_never_crash(raw: bytes) -> None:
    for read in (parse, read_envelope):
        with contextlib.suppress(DocumentError, EnvelopeError):
            read(raw)
