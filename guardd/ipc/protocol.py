"""The one protocol module: every name, version and limit on guardd's socket lives here.

Wire format: one JSON object per line (UTF-8, at most MAX_MESSAGE_BYTES).
Request:  {"v": 1, "op": "devices", "args": {...}}
Response: {"v": 1, "ok": true, "result": ...} or {"v": 1, "ok": false, "error": {"code", "message"}}
The daemon never trusts a request: its size, shape, version and operation are checked before
anything else, and who is asking comes from the socket (SO_PEERCRED), never from the message.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import IntEnum, StrEnum
from typing import Any

from guardd.errors import ErrorCode, GuarddError

PROTOCOL_VERSION = 1
MAX_MESSAGE_BYTES = 64 * 1024
MAX_RESPONSE_BYTES = 4 * 1024 * 1024


class Op(StrEnum):
    """The operations guardd answers."""

    HELLO = "hello"
    DEVICES = "devices"
    RELOAD = "reload"
    STATS = "stats"
    REQUEST = "request"
    REQUESTS = "requests"
    CLOUD = "cloud"


class Privilege(IntEnum):
    """Who may make a request: any local user (staff) or an administrator."""

    STAFF = 1
    ADMIN = 2


# Every operation declares who may make it; an operation missing here is refused.
PRIVILEGES: dict[Op, Privilege] = {
    Op.HELLO: Privilege.STAFF,
    Op.DEVICES: Privilege.STAFF,
    Op.RELOAD: Privilege.ADMIN,
    Op.STATS: Privilege.ADMIN,
    Op.REQUEST: Privilege.STAFF,
    Op.REQUESTS: Privilege.STAFF,  # staff see their own; IT everyone's
    Op.CLOUD: Privilege.STAFF,  # staff see their own folders; IT everyone's
}


@dataclass(frozen=True)
class Request:
    """A decoded, shape-checked request."""

    op: Op
    args: dict[str, Any]


def _dumps(obj: object) -> bytes:
    return json.dumps(obj, ensure_ascii=True, separators=(",", ":")).encode("ascii") + b"\n"


def encode_request(op: Op, args: dict[str, Any] | None = None) -> bytes:
    """A request line."""
    return _dumps({"v": PROTOCOL_VERSION, "op": op.value, "args": args or {}})


def encode_result(result: object) -> bytes:
    """A success response line."""
    return _dumps({"v": PROTOCOL_VERSION, "ok": True, "result": result})


def encode_error(error: GuarddError) -> bytes:
    """A failure response line."""
    body = {"code": error.code.value, "message": error.message}
    return _dumps({"v": PROTOCOL_VERSION, "ok": False, "error": body})


def _load(line: bytes, limit: int) -> dict[str, Any]:
    if len(line) > limit:
        raise GuarddError(ErrorCode.TOO_LARGE, "message too large")
    try:
        obj = json.loads(line.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        raise GuarddError(ErrorCode.INVALID_REQUEST, "message is not valid JSON") from None
    if not isinstance(obj, dict):
        raise GuarddError(ErrorCode.INVALID_REQUEST, "message is not a JSON object")
    version = obj.get("v")
    # type() and not ==: true and 1.0 compare equal to 1 but are not version 1.
    if type(version) is not int or version != PROTOCOL_VERSION:
        raise GuarddError(
            ErrorCode.UNSUPPORTED_VERSION,
            f"protocol version {version!r} is not supported (this guardd speaks "
            f"{PROTOCOL_VERSION})",
        )
    return obj


def decode_request(line: bytes) -> Request:
    """Parse and shape-check a request line; raise GuarddError on anything odd."""
    obj = _load(line, MAX_MESSAGE_BYTES)
    op, args = obj.get("op"), obj.get("args", {})
    if not isinstance(op, str) or op not in Op.__members__.values():
        raise GuarddError(ErrorCode.UNKNOWN_REQUEST, f"unknown request {str(op)[:40]!r}")
    if not isinstance(args, dict):
        raise GuarddError(ErrorCode.INVALID_REQUEST, "'args' must be an object")
    return Request(Op(op), args)


def decode_response(line: bytes) -> object:
    """The result of a response line, or the GuarddError it carries."""
    obj = _load(line, MAX_RESPONSE_BYTES)
    if obj.get("ok") is True:
        return obj.get("result")
    error = obj.get("error")
    if not isinstance(error, dict):
        raise GuarddError(ErrorCode.INVALID_REQUEST, "malformed response from guardd")
    try:
        code = ErrorCode(str(error.get("code")))
    except ValueError:
        code = ErrorCode.INTERNAL
    raise GuarddError(code, str(error.get("message", "unknown error")))
