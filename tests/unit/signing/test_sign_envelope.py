"""The envelope: what travels in the exchange, read strictly and with a size limit."""

from __future__ import annotations

import json
import time

import pytest

from signing import Envelope, EnvelopeError, read_envelope, write_envelope
from signing.envelope import FORMAT, MAX_ENVELOPE_BYTES

SIG = "-----BEGIN PGP SIGNATURE-----\n\niHUEABYIAB0WIQ==\n=abcd\n-----END PGP SIGNATURE-----\n"
DOC = '{"kind":"approval","user":"Zoë"}'


def envelope(**fields: object) -> bytes:
    body: dict[str, object] = {"format": FORMAT, "document": DOC, "signature": SIG}
    body.update(fields)
    return json.dumps({k: v for k, v in body.items() if v is not None}).encode()


def refusal(raw: bytes) -> str:
    with pytest.raises(EnvelopeError) as caught:
        read_envelope(raw)
    assert "\n" not in str(caught.value)
    return str(caught.value)


def test_round_trip() -> None:
    raw = write_envelope(DOC.encode(), SIG)
    assert raw.endswith(b"\n")
    env = read_envelope(raw)
    assert env == Envelope(DOC, SIG)
    assert env.signed_bytes == DOC.encode("utf-8")


def test_a_50_mb_file_is_refused_before_parsing() -> None:
    raw = b"{" * (50 * 1024 * 1024)
    started = time.perf_counter()
    assert refusal(raw) == (
        f"the file is {len(raw)} bytes; a signed document is at most {MAX_ENVELOPE_BYTES}"
    )
    assert time.perf_counter() - started < 0.1


def test_the_limit_is_64_kib() -> None:
    padding = MAX_ENVELOPE_BYTES - len(envelope(document="x"))
    assert read_envelope(envelope(document="x" * (padding + 1))).document.startswith("x")
    assert "at most 65536" in refusal(envelope(document="x" * (padding + 2)))


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b"", "not valid JSON"),
        (b"[]", "not a JSON object"),
        (b"\xff", "not valid UTF-8"),
        (envelope(extra=1), "unknown field 'extra'"),
        (envelope(signature=None), "has no 'signature'"),
        (envelope(document=None), "has no 'document'"),
        (envelope(document={"kind": "approval"}), "'document' must be a string"),
        (envelope(format="guardd-signed/2"), "unknown format 'guardd-signed/2'"),
        (envelope(document=""), "document is empty"),
        (envelope(signature="hello"), "not an ASCII-armored PGP signature block"),
        (envelope(signature=SIG.replace("iHUE", "iHUÉ")), "not ASCII armor"),
        (envelope(signature=SIG + SIG), "more than one armored block"),
        (
            envelope(signature=SIG.replace("iHUE", "-----BEGIN PGP PUBLIC KEY BLOCK-----")),
            "more than one armored block",
        ),
        (b'{"format": "a", "format": "b"}', "field 'format' appears twice"),
    ],
)
def test_refusals(raw: bytes, expected: str) -> None:
    assert expected in refusal(raw)


def test_a_lone_surrogate_document_is_refused() -> None:
    raw = envelope(document="x").replace(b'"x"', b'"\\udc80"')
    assert refusal(raw) == "the signed file's document is not valid Unicode"


def test_write_refuses_what_read_would() -> None:
    with pytest.raises(EnvelopeError, match="not an ASCII-armored"):
        write_envelope(DOC.encode(), "not a signature")
    with pytest.raises(EnvelopeError, match="not valid UTF-8"):
        write_envelope(b"\xff", SIG)
    with pytest.raises(EnvelopeError, match="would be"):
        write_envelope(b"x" * MAX_ENVELOPE_BYTES, SIG)
