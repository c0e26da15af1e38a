"""A blocking subscriber to guardd's events: what the tray listens with.

`Subscription(path).open()` sends the subscribe request and reads guardd's answer; then
`next_event(timeout)` returns each event as it comes (None when `timeout` passes first).
guardd going away (stopped, restarted, or dropping a subscriber that fell behind) raises
GuarddError(UNAVAILABLE): the caller reconnects and reads the state afresh.
"""

from __future__ import annotations

import contextlib
import select
import socket
from pathlib import Path
from types import TracebackType
from typing import Self

from guardd.errors import ErrorCode, GuarddError
from guardd.ipc.client import connect
from guardd.ipc.protocol import (
    MAX_EVENT_BYTES,
    MAX_RESPONSE_BYTES,
    Event,
    Op,
    decode_event,
    decode_response,
    encode_request,
)


class Subscription:
    """One open subscription (a connection that guardd keeps open)."""

    def __init__(self, path: Path, connect_timeout: float = 10.0) -> None:
        self.path = path
        self._timeout = connect_timeout
        self._sock: socket.socket | None = None
        self._buffer = bytearray()
        self.ack: dict[str, object] = {}

    def open(self) -> Self:
        """Connect and subscribe; GuarddError when guardd is not there or refuses."""
        sock = connect(self.path, self._timeout, encode_request(Op.SUBSCRIBE))
        self._sock = sock
        try:
            ack = decode_response(self._answer())
        except BaseException:
            self.close()
            raise
        self.ack = ack if isinstance(ack, dict) else {}
        return self

    def _answer(self) -> bytes:
        line = self._line(self._timeout, MAX_RESPONSE_BYTES)
        if line is None:
            raise GuarddError(ErrorCode.UNAVAILABLE, "guardd did not answer in time")
        return line

    def next_event(self, timeout: float | None) -> Event | None:
        """The next event, or None when `timeout` seconds pass without one."""
        line = self._line(timeout, MAX_EVENT_BYTES)
        return None if line is None else decode_event(line)

    def fileno(self) -> int:
        """The socket, for select() (readable when an event, or the end, comes)."""
        if self._sock is None:
            raise GuarddError(ErrorCode.UNAVAILABLE, "not subscribed")
        return self._sock.fileno()

    def _line(self, timeout: float | None, limit: int) -> bytes | None:
        while (end := self._buffer.find(b"\n")) < 0:
            if len(self._buffer) > limit:
                raise GuarddError(ErrorCode.TOO_LARGE, "message from guardd is too large")
            if not self._wait(timeout):
                return None
            self._buffer += self._recv()
        line = bytes(self._buffer[: end + 1])
        del self._buffer[: end + 1]
        return line

    def _wait(self, timeout: float | None) -> bool:
        readable, _, _ = select.select([self.fileno()], [], [], timeout)
        return bool(readable)

    def _recv(self) -> bytes:
        assert self._sock is not None
        try:
            chunk = self._sock.recv(65536)
        except OSError as e:
            raise GuarddError(ErrorCode.UNAVAILABLE, f"lost guardd: {e.strerror or e}") from None
        if not chunk:
            raise GuarddError(ErrorCode.UNAVAILABLE, "guardd closed the connection")
        return chunk

    def close(self) -> None:
        """Hang up (idempotent)."""
        if self._sock is not None:
            with contextlib.suppress(OSError):
                self._sock.close()
            self._sock = None

    def __enter__(self) -> Self:
        """Open the subscription."""
        return self.open()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Close the subscription."""
        self.close()
