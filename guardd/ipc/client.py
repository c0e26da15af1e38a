"""A blocking client for guardd's socket: what the CLIs (and the tray) call."""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Any

from guardd.config import DEFAULT_SOCKET
from guardd.errors import ErrorCode, GuarddError
from guardd.ipc.protocol import MAX_RESPONSE_BYTES, Op, decode_response, encode_request

SOCKET_ENV = "GUARDD_SOCKET"


def resolve_socket(explicit: Path | None, configured: Path | None = None) -> Path:
    """--socket wins, then $GUARDD_SOCKET, then the config's socket, then the installed one."""
    if explicit is not None:
        return explicit
    env = os.environ.get(SOCKET_ENV)
    if env:
        return Path(env)
    return configured or DEFAULT_SOCKET


class Client:
    """One connection to guardd; one request at a time."""

    def __init__(self, path: Path, timeout: float = 10.0) -> None:
        self.path = path
        self._timeout = timeout

    def call(self, op: Op | str, args: dict[str, Any] | None = None) -> object:
        """Send a request, return its result; GuarddError (UNAVAILABLE when guardd is down)."""
        with self._connect() as sock:
            sock.sendall(encode_request(op, args))
            return decode_response(_read_line(sock))

    def _connect(self) -> socket.socket:
        return connect(self.path, self._timeout)


def connect(path: Path, timeout: float, first: bytes = b"") -> socket.socket:
    """A connection to guardd's socket (sending `first` at once); GuarddError UNAVAILABLE
    with one plain line when guardd is not there."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    sock.settimeout(timeout)
    try:
        sock.connect(str(path))
        if first:
            sock.sendall(first)
    except OSError as e:
        sock.close()
        raise GuarddError(
            ErrorCode.UNAVAILABLE,
            f"guardd is not running or cannot be reached at {path} ({e.strerror or e})",
        ) from None
    return sock


def _read_line(sock: socket.socket) -> bytes:
    buf = bytearray()
    try:
        while not buf.endswith(b"\n"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            buf += chunk
            if len(buf) > MAX_RESPONSE_BYTES:
                raise GuarddError(ErrorCode.TOO_LARGE, "answer from guardd is too large")
    except TimeoutError:
        raise GuarddError(ErrorCode.UNAVAILABLE, "guardd did not answer in time") from None
    except OSError as e:
        raise GuarddError(ErrorCode.UNAVAILABLE, f"lost guardd: {e.strerror or e}") from None
    if not buf:
        raise GuarddError(ErrorCode.UNAVAILABLE, "guardd closed the connection without answering")
    return bytes(buf)
