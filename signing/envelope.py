"""The signed file that travels through the exchange: a document and its detached signature.

    {"format": "guardd-signed/1",
     "document": "<the canonical document, as a JSON string>",
     "signature": "<ASCII-armored detached OpenPGP signature>"}

The envelope itself is not signed and may be re-formatted freely; only the `document` string
(its UTF-8 bytes) is covered by the signature. Reading is strict and bounded: the exchange may
sit on a share anyone can write to, so a 50 MB file is refused before any parsing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from signing.document import load_json_object
from signing.errors import DocumentError, EnvelopeError

FORMAT = "guardd-signed/1"
MAX_ENVELOPE_BYTES = 64 * 1024
ARMOR_BEGIN = "-----BEGIN PGP SIGNATURE-----"
ARMOR_END = "-----END PGP SIGNATURE-----"
_FIELDS = frozenset({"format", "document", "signature"})


@dataclass(frozen=True)
class Envelope:
    """A document string and the armored signature over its UTF-8 bytes."""

    document: str
    signature: str

    @property
    def signed_bytes(self) -> bytes:
        """The bytes the signature covers."""
        return self.document.encode("utf-8")


def read_envelope(raw: bytes) -> Envelope:
    """An Envelope from a file's bytes; EnvelopeError (one line) when its shape is wrong."""
    if len(raw) > MAX_ENVELOPE_BYTES:
        raise EnvelopeError(
            f"the file is {len(raw)} bytes; a signed document is at most {MAX_ENVELOPE_BYTES}"
        )
    try:
        obj = load_json_object(raw, "the signed file")
    except DocumentError as e:
        raise EnvelopeError(str(e)) from None
    _check_fields(obj)
    if obj["format"] != FORMAT:
        raise EnvelopeError(f"unknown format {obj['format'][:40]!r} (expected {FORMAT!r})")
    signature: str = obj["signature"]
    problem = armor_problem(signature)
    if problem is not None:
        raise EnvelopeError(problem)
    document: str = obj["document"]
    if not document:
        raise EnvelopeError("the signed file's document is empty")
    try:
        document.encode("utf-8")
    except UnicodeEncodeError:
        raise EnvelopeError("the signed file's document is not valid Unicode") from None
    return Envelope(document=document, signature=signature)


def _check_fields(obj: dict[str, object]) -> None:
    unknown = sorted(set(obj) - _FIELDS)
    if unknown:
        raise EnvelopeError(f"the signed file has an unknown field {unknown[0]!r}")
    missing = sorted(_FIELDS - set(obj))
    if missing:
        raise EnvelopeError(f"the signed file has no {missing[0]!r}")
    for name in sorted(_FIELDS):
        if not isinstance(obj[name], str):
            raise EnvelopeError(f"the signed file's {name!r} must be a string")


def armor_problem(signature: str) -> str | None:
    """Why a string is not one ASCII-armored signature block, or None.

    Only the frame is checked here (one BEGIN/END pair, ASCII, nothing around it); gpg judges
    the contents.
    """
    if not signature.isascii():
        return "the signature is not ASCII armor"
    text = signature.strip()
    if not text.startswith(ARMOR_BEGIN) or not text.endswith(ARMOR_END):
        return "the signature is not an ASCII-armored PGP signature block"
    if text.count(ARMOR_BEGIN) != 1 or text.count(ARMOR_END) != 1 or "-----BEGIN" in text[1:]:
        return "the signature holds more than one armored block"
    return None


def write_envelope(document: bytes, signature: str) -> bytes:
    """The envelope's bytes (UTF-8 JSON ending in a newline) for a document and its signature."""
    problem = armor_problem(signature)
    if problem is not None:
        raise EnvelopeError(problem)
    try:
        text = document.decode("utf-8")
    except UnicodeDecodeError:
        raise EnvelopeError("the document is not valid UTF-8") from None
    body = {"format": FORMAT, "document": text, "signature": signature}
    data = (json.dumps(body, indent=1, sort_keys=True, ensure_ascii=False) + "\n").encode()
    if len(data) > MAX_ENVELOPE_BYTES:
        raise EnvelopeError(f"the signed file would be {len(data)} bytes; at most 65536")
    return data
