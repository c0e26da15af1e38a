"""guardd's socket server (asyncio): framing, limits, the caller's uid, and dispatch.

Each operation is registered with the privilege it needs (from protocol.PRIVILEGES);
anything not registered is refused, and an unexpected exception in a handler becomes an
"internal error" answer, never a dead daemon. A streaming operation (subscribe) answers once
and then owns the connection until it ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import pwd
import socket
import struct
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from guardd.errors import ErrorCode, GuarddError
from guardd.ipc.protocol import (
    MAX_MESSAGE_BYTES,
    PRIVILEGES,
    Op,
    Privilege,
    decode_request,
    encode_error,
    encode_result,
)

log = logging.getLogger(__name__)

IDLE_TIMEOUT_S = 30.0
MAX_CONNECTIONS = 64


@dataclass(frozen=True)
class Peer:
    """Who is on the other end, as the kernel says (SO_PEERCRED)."""

    pid: int
    uid: int
    gid: int

    @property
    def user(self) -> str:
        """The user's login name, or their uid when the name is unknown."""
        try:
            return pwd.getpwuid(self.uid).pw_name
        except KeyError:
            return str(self.uid)


Handler = Callable[[Peer, dict[str, Any]], Awaitable[object]]


class Stream(Protocol):
    """A connection handed over after its first answer (`ack`): `run` streams until the
    peer goes or the stream ends; `close` is always called after, even if `run` never was."""

    ack: object

    async def run(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Own the connection until done."""

    def close(self) -> None:
        """Release what the stream holds."""


StreamOpener = Callable[[Peer, dict[str, Any]], Awaitable[Stream]]


def _in_use(path: Path) -> bool:
    """True when something answers on the socket (a stale file from a crash does not)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC) as probe:
        try:
            probe.connect(str(path))
        except OSError:
            return False
    return True


def peer_of(sock: socket.socket) -> Peer:
    """Read the peer's credentials from the kernel."""
    raw = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    pid, uid, gid = struct.unpack("3i", raw)
    return Peer(pid, uid, gid)


class IpcServer:
    """Serves the registered handlers on a unix socket."""

    def __init__(self, path: Path, admin_uids: frozenset[int]) -> None:
        self._path = path
        self._admin_uids = admin_uids
        self._handlers: dict[Op, Handler] = {}
        self._streams: dict[Op, StreamOpener] = {}
        self._server: asyncio.AbstractServer | None = None
        self._slots = asyncio.Semaphore(MAX_CONNECTIONS)

    def register(self, op: Op, handler: Handler) -> None:
        """Serve `op`; its privilege is the one the protocol declares for it."""
        if op not in PRIVILEGES:
            raise ValueError(f"{op} has no declared privilege")
        self._handlers[op] = handler

    def register_stream(self, op: Op, opener: StreamOpener) -> None:
        """Serve `op` as a stream (answered once, then the connection is the stream's)."""
        if op not in PRIVILEGES:
            raise ValueError(f"{op} has no declared privilege")
        self._streams[op] = opener

    async def start(self) -> None:
        """Listen (any local user may connect; each request is then checked)."""
        self._path.parent.mkdir(parents=True, exist_ok=True, mode=0o755)
        if _in_use(self._path):
            raise GuarddError(
                ErrorCode.UNAVAILABLE, f"another guardd is already serving {self._path}"
            )
        if self._path.is_socket() or self._path.is_symlink():
            self._path.unlink()
        self._server = await asyncio.start_unix_server(
            self._serve, path=str(self._path), limit=MAX_MESSAGE_BYTES
        )
        # Every local user may connect: each request is then checked against its privilege.
        os.chmod(self._path, 0o666)  # noqa: S103

    async def stop(self) -> None:
        """Stop listening and remove the socket file."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        with contextlib.suppress(OSError):
            self._path.unlink()

    def _allowed(self, peer: Peer, op: Op) -> bool:
        needed = PRIVILEGES.get(op)
        if needed is None:
            return False
        return needed is Privilege.STAFF or peer.uid in self._admin_uids

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._slots.locked():
            writer.close()
            return
        async with self._slots:
            try:
                peer = peer_of(writer.get_extra_info("socket"))
                await self._conversation(peer, reader, writer)
            except (ConnectionError, TimeoutError, asyncio.IncompleteReadError, OSError):
                pass
            finally:
                writer.close()

    async def _conversation(
        self, peer: Peer, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        while True:
            try:
                line = await asyncio.wait_for(reader.readuntil(b"\n"), IDLE_TIMEOUT_S)
            except asyncio.LimitOverrunError:
                writer.write(encode_error(GuarddError(ErrorCode.TOO_LARGE, "message too large")))
                await writer.drain()
                return
            except asyncio.IncompleteReadError:
                return
            answer, stream = await self._answer(peer, line)
            if stream is not None:
                await self._hand_over(stream, answer, reader, writer)
                return
            writer.write(answer)
            await writer.drain()

    async def _hand_over(
        self,
        stream: Stream,
        answer: bytes,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> None:
        try:
            writer.write(answer)
            await writer.drain()
            await stream.run(reader, writer)
        finally:
            stream.close()

    def _handler_for(self, peer: Peer, op: Op) -> Handler:
        handler = self._handlers.get(op)
        if handler is None:
            raise GuarddError(ErrorCode.UNKNOWN_REQUEST, f"unknown request {op.value!r}")
        self._check(peer, op)
        return handler

    def _check(self, peer: Peer, op: Op) -> None:
        if not self._allowed(peer, op):
            raise GuarddError(ErrorCode.NOT_PERMITTED, f"only IT administrators may ask for {op}")

    async def _answer(self, peer: Peer, line: bytes) -> tuple[bytes, Stream | None]:
        try:
            request = decode_request(line)
            opener = self._streams.get(request.op)
            if opener is not None:
                self._check(peer, request.op)
                stream = await opener(peer, request.args)
                return encode_result(stream.ack), stream
            handler = self._handler_for(peer, request.op)
            return encode_result(await handler(peer, request.args)), None
        except GuarddError as e:
            return encode_error(e), None
        except Exception:  # a handler bug must not take the guard down
            log.exception("internal error answering %r", line[:200])
            return encode_error(GuarddError(ErrorCode.INTERNAL, "internal error in guardd")), None
