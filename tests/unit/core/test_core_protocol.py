"""The socket protocol: encoding, decoding, and every request the daemon must refuse."""

from __future__ import annotations

import json
from typing import Any

import pytest

from guardd.errors import ErrorCode, GuarddError
from guardd.ipc.protocol import (
    MAX_MESSAGE_BYTES,
    MAX_RESPONSE_BYTES,
    PRIVILEGES,
    PROTOCOL_VERSION,
    Op,
    Privilege,
    Request,
    decode_request,
    decode_response,
    encode_error,
    encode_request,
    encode_result,
)


def refusal(line: bytes) -> GuarddError:
    with pytest.raises(GuarddError) as caught:
        decode_request(line)
    return caught.value


# --- every operation declares its privilege -----------------------------------------------


def test_every_op_declares_a_privilege() -> None:
    # Adding an Op without an entry in PRIVILEGES must fail here, not at run time.
    assert set(PRIVILEGES) == set(Op)
    assert all(isinstance(p, Privilege) for p in PRIVILEGES.values())


def test_privileges_of_the_current_ops() -> None:
    assert PRIVILEGES[Op.HELLO] is Privilege.STAFF
    assert PRIVILEGES[Op.DEVICES] is Privilege.STAFF
    assert PRIVILEGES[Op.RELOAD] is Privilege.ADMIN
    assert PRIVILEGES[Op.STATS] is Privilege.ADMIN


# --- round trips -----------------------------------------------------------------------------


@pytest.mark.parametrize("op", list(Op))
def test_request_round_trip(op: Op) -> None:
    args: dict[str, Any] = {"id": "2-1", "n": 3, "nested": {"a": [1, None, True]}}
    line = encode_request(op, args)
    assert line.endswith(b"\n")
    assert line.count(b"\n") == 1
    assert decode_request(line) == Request(op, args)


def test_request_without_args_gets_an_empty_object() -> None:
    line = encode_request(Op.HELLO)
    assert json.loads(line) == {"v": PROTOCOL_VERSION, "op": "hello", "args": {}}
    assert decode_request(line) == Request(Op.HELLO, {})
    assert decode_request(b'{"v":1,"op":"devices"}\n') == Request(Op.DEVICES, {})


def test_non_ascii_and_line_breaks_are_escaped_on_the_wire() -> None:
    args = {"label": "Café\u2028stick\nnext", "emoji": "\U0001f4be"}
    line = encode_request(Op.DEVICES, args)
    assert line.isascii()
    assert line.count(b"\n") == 1
    assert decode_request(line).args == args


@pytest.mark.parametrize(
    "result", [None, 0, "text", [1, 2], {"devices": [{"id": "2-1", "serial": "Ünïcode"}]}]
)
def test_result_round_trip(result: object) -> None:
    line = encode_result(result)
    assert line.isascii()
    assert line.endswith(b"\n")
    assert decode_response(line) == result


@pytest.mark.parametrize("code", list(ErrorCode))
def test_error_round_trip(code: ErrorCode) -> None:
    line = encode_error(GuarddError(code, f"it went wrong: {code}"))
    with pytest.raises(GuarddError) as caught:
        decode_response(line)
    assert caught.value.code is code
    assert caught.value.message == f"it went wrong: {code}"


# --- refused requests ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "code", "message"),
    [
        (b"not json\n", ErrorCode.INVALID_REQUEST, "message is not valid JSON"),
        (b"\n", ErrorCode.INVALID_REQUEST, "message is not valid JSON"),
        (b'{"v":1,"op":"hello"\n', ErrorCode.INVALID_REQUEST, "message is not valid JSON"),
        (b'[1,"hello"]\n', ErrorCode.INVALID_REQUEST, "message is not a JSON object"),
        (b'"hello"\n', ErrorCode.INVALID_REQUEST, "message is not a JSON object"),
        (b"null\n", ErrorCode.INVALID_REQUEST, "message is not a JSON object"),
        (
            b'{"v":1,"op":"hello","args":[]}\n',
            ErrorCode.INVALID_REQUEST,
            "'args' must be an object",
        ),
        (
            b'{"v":1,"op":"hello","args":null}\n',
            ErrorCode.INVALID_REQUEST,
            "'args' must be an object",
        ),
        (
            b'{"v":1,"op":"format-disk"}\n',
            ErrorCode.UNKNOWN_REQUEST,
            "unknown request 'format-disk'",
        ),
        (b'{"v":1,"op":"HELLO"}\n', ErrorCode.UNKNOWN_REQUEST, "unknown request 'HELLO'"),
        (b'{"v":1,"op":7}\n', ErrorCode.UNKNOWN_REQUEST, "unknown request '7'"),
        (b'{"v":1}\n', ErrorCode.UNKNOWN_REQUEST, "unknown request 'None'"),
    ],
)
def test_request_refused(line: bytes, code: ErrorCode, message: str) -> None:
    error = refusal(line)
    assert error.code is code
    assert error.message == message


@pytest.mark.parametrize(
    ("version", "shown"), [(2, "2"), (0, "0"), ('"1"', "'1'"), ("null", "None")]
)
def test_wrong_version_is_refused(version: str | int, shown: str) -> None:
    error = refusal(b'{"v":%s,"op":"hello"}\n' % str(version).encode())
    assert error.code is ErrorCode.UNSUPPORTED_VERSION
    assert error.message == (
        f"protocol version {shown} is not supported (this guardd speaks {PROTOCOL_VERSION})"
    )


def test_missing_version_is_refused() -> None:
    assert refusal(b'{"op":"hello"}\n').code is ErrorCode.UNSUPPORTED_VERSION


@pytest.mark.parametrize("version", [b"true", b"1.0"])
def test_version_that_only_compares_equal_to_one_is_refused(version: bytes) -> None:
    assert refusal(b'{"v":%s,"op":"hello"}\n' % version).code is ErrorCode.UNSUPPORTED_VERSION


def test_unknown_op_in_the_message_is_cut_short() -> None:
    error = refusal(encode_request(Op.HELLO).replace(b'"hello"', b'"' + b"x" * 1000 + b'"'))
    assert error.code is ErrorCode.UNKNOWN_REQUEST
    assert len(error.message) < 80


@pytest.mark.parametrize(
    "line",
    [
        b'{"v":1,"op":"hello","args":{"s":"\xff\xfe"}}\n',
        b'{"v":1,"op":"hel\xc3"}\n',
        b"\xef\xbb\xbf\xed\xa0\x80\n",  # an encoded surrogate is not UTF-8
    ],
)
def test_invalid_utf8_is_refused(line: bytes) -> None:
    error = refusal(line)
    assert error.code is ErrorCode.INVALID_REQUEST
    assert error.message == "message is not valid JSON"


def padded_request(size: int) -> bytes:
    """A valid hello request exactly `size` bytes long (newline included)."""
    base = encode_request(Op.HELLO, {"p": ""})
    line = encode_request(Op.HELLO, {"p": "x" * (size - len(base))})
    assert len(line) == size
    return line


def test_request_of_exactly_the_limit_is_accepted() -> None:
    assert decode_request(padded_request(MAX_MESSAGE_BYTES)).op is Op.HELLO


def test_request_over_the_limit_is_refused() -> None:
    error = refusal(padded_request(MAX_MESSAGE_BYTES + 1))
    assert error.code is ErrorCode.TOO_LARGE
    assert error.message == "message too large"


def test_size_is_checked_before_anything_else() -> None:
    assert refusal(b"\xff" * (MAX_MESSAGE_BYTES + 1)).code is ErrorCode.TOO_LARGE


@pytest.mark.parametrize(("open_", "close"), [(b"[", b"]"), (b'{"a":', b"}")])
def test_deeply_nested_json_is_refused_not_crashed(open_: bytes, close: bytes) -> None:
    depth = (MAX_MESSAGE_BYTES - 100) // (len(open_) + len(close))
    line = b'{"v":1,"op":"hello","args":{"x":' + open_ * depth + b"1" + close * depth + b"}}\n"
    assert len(line) <= MAX_MESSAGE_BYTES
    error = refusal(line)
    assert error.code is ErrorCode.INVALID_REQUEST
    assert error.message == "message is not valid JSON"


# --- responses -------------------------------------------------------------------------------


def response_error(line: bytes) -> GuarddError:
    with pytest.raises(GuarddError) as caught:
        decode_response(line)
    return caught.value


def test_error_with_an_unknown_code_becomes_internal() -> None:
    line = b'{"v":1,"ok":false,"error":{"code":"exploded","message":"the flux capacitor"}}\n'
    error = response_error(line)
    assert error.code is ErrorCode.INTERNAL
    assert error.message == "the flux capacitor"


def test_error_without_a_code_or_message() -> None:
    error = response_error(b'{"v":1,"ok":false,"error":{}}\n')
    assert error.code is ErrorCode.INTERNAL
    assert error.message == "unknown error"


@pytest.mark.parametrize(
    "line",
    [b'{"v":1,"ok":false}\n', b'{"v":1,"ok":false,"error":"boom"}\n', b'{"v":1,"ok":"yes"}\n'],
)
def test_malformed_response(line: bytes) -> None:
    error = response_error(line)
    assert error.code is ErrorCode.INVALID_REQUEST
    assert error.message == "malformed response from guardd"


def test_response_of_another_version_is_refused() -> None:
    assert response_error(b'{"v":2,"ok":true,"result":1}\n').code is ErrorCode.UNSUPPORTED_VERSION


def test_response_limit_is_larger_than_the_request_limit() -> None:
    big = encode_result("x" * (MAX_MESSAGE_BYTES * 4))
    assert MAX_MESSAGE_BYTES < len(big) <= MAX_RESPONSE_BYTES
    assert decode_response(big) == "x" * (MAX_MESSAGE_BYTES * 4)
    assert response_error(b" " * (MAX_RESPONSE_BYTES + 1)).code is ErrorCode.TOO_LARGE


def test_deeply_nested_response_is_refused() -> None:
    depth = 50_000
    error = response_error(b'{"v":1,"ok":true,"result":' + b"[" * depth + b"]" * depth + b"}")
    assert error.code is ErrorCode.INVALID_REQUEST
