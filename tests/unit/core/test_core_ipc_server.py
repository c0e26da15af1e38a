"""The socket server for real: an IpcServer on a unix socket, talked to with the CLIs' Client."""

from __future__ import annotations

import asyncio
import os
import pwd
import socket
import stat
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import pytest

from guardd.errors import ErrorCode, GuarddError
from guardd.ipc import protocol
from guardd.ipc.client import Client
from guardd.ipc.protocol import MAX_MESSAGE_BYTES, Op, decode_response, encode_request
from guardd.ipc.server import Handler, IpcServer, Peer

T = TypeVar("T")
NOT_ME = frozenset({12345})  # the tests run as root: uid 0 must not count as an admin here


def serve(
    path: Path, admin_uids: frozenset[int], handlers: Mapping[Op, Handler], talk: Callable[[], T]
) -> T:
    """Start a server with `handlers`, run `talk` in a thread against it, stop the server."""

    async def main() -> T:
        server = IpcServer(path, admin_uids)
        for op, handler in handlers.items():
            server.register(op, handler)
        await server.start()
        try:
            return await asyncio.to_thread(talk)
        finally:
            await server.stop()

    return asyncio.run(main())


def outcome(client: Client, op: Op, args: dict[str, Any] | None = None) -> object:
    """The result of a call, or the GuarddError it raised (so a thread can hand it back)."""
    try:
        return client.call(op, args)
    except GuarddError as e:
        return e


class Recorder:
    """Handlers that record who called them with what."""

    def __init__(self) -> None:
        self.calls: list[tuple[Op, Peer, dict[str, Any]]] = []

    def handler(self, op: Op, result: object = "ok") -> Handler:
        async def handle(peer: Peer, args: dict[str, Any]) -> object:
            self.calls.append((op, peer, args))
            return result

        return handle


@pytest.fixture
def sock(tmp_path: Path) -> Path:
    path = tmp_path / "run" / "g.sock"
    assert len(str(path)) < 100  # sun_path is 108 bytes
    return path


def assert_error(value: object, code: ErrorCode) -> GuarddError:
    assert isinstance(value, GuarddError), value
    assert value.code is code
    return value


def test_staff_op_answered_with_the_callers_credentials(sock: Path) -> None:
    async def hello(peer: Peer, args: dict[str, Any]) -> object:
        return {"uid": peer.uid, "gid": peer.gid, "pid": peer.pid, "args": args, "user": peer.user}

    result = serve(sock, NOT_ME, {Op.HELLO: hello}, lambda: Client(sock).call(Op.HELLO, {"x": 1}))
    assert result == {
        "uid": os.getuid(),
        "gid": os.getgid(),
        "pid": os.getpid(),
        "args": {"x": 1},
        "user": pwd.getpwuid(os.getuid()).pw_name,
    }


def test_admin_op_refused_for_a_uid_not_in_admin_uids(sock: Path) -> None:
    recorder = Recorder()
    handlers = {Op.STATS: recorder.handler(Op.STATS), Op.HELLO: recorder.handler(Op.HELLO)}

    def talk() -> tuple[object, object]:
        client = Client(sock)
        return outcome(client, Op.STATS), outcome(client, Op.HELLO)

    stats, hello = serve(sock, NOT_ME, handlers, talk)
    error = assert_error(stats, ErrorCode.NOT_PERMITTED)
    assert error.message == "only IT administrators may ask for stats"
    assert hello == "ok"  # staff ops still answered for the same caller
    assert [op for op, _, _ in recorder.calls] == [Op.HELLO]  # the admin handler never ran


def test_admin_op_answered_for_a_uid_in_admin_uids(sock: Path) -> None:
    recorder = Recorder()
    handlers = {Op.RELOAD: recorder.handler(Op.RELOAD, {"reloaded": True, "changed": 2})}
    me = frozenset({12345, os.getuid()})
    result = serve(sock, me, handlers, lambda: Client(sock).call(Op.RELOAD))
    assert result == {"reloaded": True, "changed": 2}
    assert [(op, peer.uid) for op, peer, _ in recorder.calls] == [(Op.RELOAD, os.getuid())]


def test_unregistered_op_is_an_unknown_request(sock: Path) -> None:
    recorder = Recorder()
    result = serve(
        sock,
        frozenset({os.getuid()}),
        {Op.HELLO: recorder.handler(Op.HELLO)},
        lambda: outcome(Client(sock), Op.DEVICES),
    )
    assert assert_error(result, ErrorCode.UNKNOWN_REQUEST).message == "unknown request 'devices'"


def test_handler_crash_is_an_internal_error_and_the_server_keeps_serving(
    sock: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async def broken(peer: Peer, args: dict[str, Any]) -> object:
        raise RuntimeError("handler bug")

    async def fine(peer: Peer, args: dict[str, Any]) -> object:
        return ["still here"]

    def talk() -> list[object]:
        client = Client(sock)
        return [outcome(client, Op.DEVICES), outcome(client, Op.HELLO), outcome(client, Op.DEVICES)]

    first, second, third = serve(sock, NOT_ME, {Op.DEVICES: broken, Op.HELLO: fine}, talk)
    error = assert_error(first, ErrorCode.INTERNAL)
    assert error.message == "internal error in guardd"
    assert "handler bug" not in error.message  # no internals on the wire
    assert second == ["still here"]
    assert_error(third, ErrorCode.INTERNAL)
    assert any("internal error answering" in r.getMessage() for r in caplog.records)


def test_unserialisable_result_is_an_internal_error(sock: Path) -> None:
    async def odd(peer: Peer, args: dict[str, Any]) -> object:
        return {"when": object()}

    result = serve(sock, NOT_ME, {Op.HELLO: odd}, lambda: outcome(Client(sock), Op.HELLO))
    assert_error(result, ErrorCode.INTERNAL)


def test_handler_guardd_error_keeps_its_code(sock: Path) -> None:
    async def missing(peer: Peer, args: dict[str, Any]) -> object:
        raise GuarddError(ErrorCode.NOT_FOUND, f"no device {args.get('id')!r}")

    result = serve(
        sock, NOT_ME, {Op.DEVICES: missing}, lambda: outcome(Client(sock), Op.DEVICES, {"id": "9"})
    )
    assert assert_error(result, ErrorCode.NOT_FOUND).message == "no device '9'"


def test_message_over_64_kib_is_too_large(sock: Path) -> None:
    recorder = Recorder()

    def talk() -> tuple[object, object]:
        client = Client(sock)
        big = outcome(client, Op.HELLO, {"pad": "x" * (MAX_MESSAGE_BYTES + 10)})
        return big, outcome(client, Op.HELLO, {"pad": "small"})

    big, after = serve(sock, NOT_ME, {Op.HELLO: recorder.handler(Op.HELLO)}, talk)
    assert assert_error(big, ErrorCode.TOO_LARGE).message == "message too large"
    assert after == "ok"
    assert [args for _, _, args in recorder.calls] == [{"pad": "small"}]


def test_several_requests_on_one_connection_and_garbage_between(sock: Path) -> None:
    recorder = Recorder()

    def talk() -> list[object]:
        answers: list[object] = []
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
            conn.settimeout(5)
            conn.connect(str(sock))
            reader = conn.makefile("rb")
            lines = [encode_request(Op.HELLO, {"n": 1}), b"not json\n", encode_request(Op.HELLO)]
            for line in lines:
                conn.sendall(line)
                try:
                    answers.append(decode_response(reader.readline()))
                except GuarddError as e:
                    answers.append(e)
            reader.close()
        return answers

    first, garbage, third = serve(sock, NOT_ME, {Op.HELLO: recorder.handler(Op.HELLO)}, talk)
    assert first == "ok"
    assert assert_error(garbage, ErrorCode.INVALID_REQUEST).message == "message is not valid JSON"
    assert third == "ok"
    assert [args for _, _, args in recorder.calls] == [{"n": 1}, {}]


def test_socket_is_open_to_every_user_and_removed_on_stop(sock: Path) -> None:
    sock.parent.mkdir(parents=True)
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(str(sock))  # a socket left behind by a killed daemon
    stale.close()

    def talk() -> int:
        return stat.S_IMODE(sock.stat().st_mode) if sock.is_socket() else -1

    mode = serve(sock, NOT_ME, {}, talk)
    assert mode == 0o666
    assert not sock.exists()


def test_a_second_server_on_a_live_socket_is_refused(sock: Path) -> None:
    async def main() -> tuple[GuarddError, object]:
        first = IpcServer(sock, NOT_ME)
        first.register(Op.HELLO, Recorder().handler(Op.HELLO, "first"))
        await first.start()
        try:
            second = IpcServer(sock, NOT_ME)
            with pytest.raises(GuarddError) as caught:
                await second.start()
            return caught.value, await asyncio.to_thread(Client(sock).call, Op.HELLO)
        finally:
            await first.stop()

    error, answer = asyncio.run(main())
    assert error.code is ErrorCode.UNAVAILABLE
    assert error.message == f"another guardd is already serving {sock}"
    assert answer == "first"  # the running one was left alone


def test_client_without_a_server_is_unavailable(sock: Path) -> None:
    error = assert_error(outcome(Client(sock), Op.HELLO), ErrorCode.UNAVAILABLE)
    assert str(sock) in error.message


def test_registering_an_op_without_a_declared_privilege_is_refused(
    sock: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delitem(protocol.PRIVILEGES, Op.STATS)
    server = IpcServer(sock, NOT_ME)

    async def handler(peer: Peer, args: dict[str, Any]) -> object:
        return None

    with pytest.raises(ValueError, match="stats has no declared privilege"):
        server.register(Op.STATS, handler)
    server.register(Op.HELLO, handler)  # the declared ones still register
