"""Audit records: their fields, canonical JSON and hash, parsing, and cleaning of hostile data.
Kept apart from file handling so the writer (log.py) and verify.py share one encoding.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TypeAlias

JsonValue: TypeAlias = (
    "str | int | float | bool | Sequence[JsonValue] | Mapping[str, JsonValue] | None"
)

GENESIS_HASH = "0" * 64
"""The "prev" of the first record."""

RECORD_KEYS = frozenset({"seq", "ts", "event", "data", "prev", "hash"})

_EVENT_RE = re.compile(r"[a-z][a-z0-9_]*(?:\.[a-z][a-z0-9_]*)+")
_SURROGATE_RE = re.compile("[\ud800-\udfff]")

# Bounds on what one record's data may hold, so a cyclic or absurd structure handed to append()
# cannot hang or exhaust the daemon; anything beyond is replaced by a marker string.
_MAX_DEPTH = 32
_MAX_NODES = 100_000
_MAX_INT_BITS = 4096  # well below Python's int<->str digit limit, which would make dumps raise
# dict first: isinstance() tries them in order and the Mapping ABC check is the slow one.
_CONTAINERS = (dict, list, tuple, set, frozenset, Mapping)


@dataclass(frozen=True)
class AuditRecord:
    """One line of the audit trail, exactly as written (data already made JSON-safe)."""

    seq: int
    ts: str
    event: str
    data: Mapping[str, JsonValue]
    prev: str
    hash: str

    def to_json(self) -> str:
        """The record's canonical JSON: the line in the file, without its newline."""
        return canonical_json(
            {
                "seq": self.seq,
                "ts": self.ts,
                "event": self.event,
                "data": self.data,
                "prev": self.prev,
                "hash": self.hash,
            }
        )


def canonical_json(value: object) -> str:
    """The one JSON spelling that record hashes are computed over."""
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )


def record_hash(body: Mapping[str, object]) -> str:
    """sha256 (hex) of the canonical JSON of a record without its "hash" key."""
    return hashlib.sha256(canonical_json(body).encode("utf-8")).hexdigest()


def check_event(event: str) -> None:
    """Raise ValueError unless `event` is a dotted lower-case name such as "device.removed"."""
    if not _EVENT_RE.fullmatch(event):
        raise ValueError(f"audit event must be a dotted lower-case name, got {event!r}")


def is_seq(value: object) -> bool:
    """Whether `value` is a record's seq: a plain int, 1 or more."""
    return type(value) is int and value >= 1


def parse_record(line: bytes) -> AuditRecord:
    """Parse and check one line (without its newline) of the log.

    Raises ValueError with a plain reason: "not valid JSON", "not an audit record" (wrong or
    missing fields) or "altered" (the hash does not match the content).
    """
    try:
        obj = json.loads(line)
    except (ValueError, RecursionError) as exc:
        raise ValueError("not valid JSON") from exc
    if not _well_formed(obj):
        raise ValueError("not an audit record")
    seq, ts, event, data = obj["seq"], obj["ts"], obj["event"], obj["data"]
    prev, digest = obj["prev"], obj.pop("hash")
    try:
        actual = record_hash(obj)
    except ValueError as exc:  # NaN and friends: json.loads accepts them, we never write them
        raise ValueError("not an audit record") from exc
    if actual != digest:
        raise ValueError("altered")
    return AuditRecord(seq=seq, ts=ts, event=event, data=data, prev=prev, hash=digest)


def clean_data(data: Mapping[str, JsonValue]) -> dict[str, JsonValue]:
    """A plain-JSON copy of `data` that always encodes (see _Cleaner)."""
    cleaner = _Cleaner()
    return {_clean_key(k): cleaner.clean(v, 1) for k, v in data.items()}


def _well_formed(obj: object) -> bool:
    """The record's shape: exactly the six keys, each of the right type."""
    if not isinstance(obj, dict) or obj.keys() != RECORD_KEYS:
        return False
    return (
        is_seq(obj["seq"])
        and isinstance(obj["ts"], str)
        and isinstance(obj["event"], str)
        and isinstance(obj["data"], dict)
        and isinstance(obj["prev"], str)
        and isinstance(obj["hash"], str)
    )


class _Cleaner:
    """Turns whatever append() was given into plain JSON values that encode without error.

    Hostile strings (USB serials decoded with surrogateescape) keep their text except for lone
    surrogates, which UTF-8 cannot carry and which become U+FFFD. Control characters need no
    work: the JSON encoder escapes them, so a line can never contain a raw newline.
    """

    def __init__(self) -> None:
        self._nodes_left = _MAX_NODES
        self._open: set[int] = set()  # containers being cleaned right now: a cycle guard

    def clean(self, value: object, depth: int = 0) -> JsonValue:
        self._nodes_left -= 1
        if self._nodes_left < 0:
            return "<truncated>"
        if type(value) is str:  # by far the commonest value: skip the isinstance chain
            return _clean_str(value)
        if isinstance(value, _CONTAINERS):
            return self._container(value, depth)
        return _clean_scalar(value)

    def _container(
        self,
        value: Mapping[object, object] | Sequence[object] | frozenset[object] | set[object],
        depth: int,
    ) -> JsonValue:
        if depth >= _MAX_DEPTH:
            return "<nested too deep>"
        if id(value) in self._open:
            return "<cycle>"
        self._open.add(id(value))
        try:
            if isinstance(value, Mapping):
                return {_clean_key(k): self.clean(v, depth + 1) for k, v in value.items()}
            return [self.clean(v, depth + 1) for v in value]
        finally:
            self._open.discard(id(value))


def _clean_scalar(value: object) -> JsonValue:
    if isinstance(value, str):
        return _clean_str(value)
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):  # int() drops IntEnum and friends to the plain number
        return int(value) if value.bit_length() <= _MAX_INT_BITS else "<int too large>"
    if isinstance(value, float):  # NaN and infinities are not JSON: keep them as text
        return float(value) if math.isfinite(value) else repr(float(value))
    if isinstance(value, bytes | bytearray):
        return _clean_str(bytes(value).decode("utf-8", "backslashreplace"))
    return _clean_str(_describe(value))


def _clean_str(text: str) -> str:
    if text.isascii():  # the common case, and ASCII cannot hold a surrogate
        return str(text)
    return _SURROGATE_RE.sub("\ufffd", str(text))


def _clean_key(key: object) -> str:
    # json.dumps would turn 1 into "1" but sort it as a number, so a re-encoding by verify
    # could order keys differently; all keys become strings here, before anything is sorted.
    return _clean_str(key if isinstance(key, str) else _describe(key))


def _describe(value: object) -> str:
    try:
        return str(value)
    except Exception:  # noqa: BLE001 - a broken __str__ must not cost us the audit record
        return f"<unprintable {type(value).__name__}>"


def format_timestamp(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def render_line(seq: int, ts: str, event: str, data_json: str, prev: str) -> tuple[str, bytes]:
    """Return (hash, line) for a record, building its canonical JSON by hand.

    Keys in sorted order are data, event, hash, prev, seq, ts: the line is the hashed body
    with "hash" spliced in, which spares a second json.dumps per append. A test checks the
    result equals canonical_json() of the record.
    """
    start = '{"data":' + data_json + ',"event":' + json.dumps(event)
    end = ',"prev":"' + prev + '","seq":' + str(seq) + ',"ts":"' + ts + '"}'
    digest = hashlib.sha256((start + end).encode("utf-8")).hexdigest()
    line = start + ',"hash":"' + digest + '"' + end + "\n"
    return digest, line.encode("utf-8")
