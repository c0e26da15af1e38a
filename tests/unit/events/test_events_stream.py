"""Subscriptions for real: an IpcServer on a unix socket, the audit log's listener feeding
the bus, and the blocking Subscription client the tray uses."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest

from guardd.audit import AuditLog
from guardd.errors import ErrorCode, GuarddError
from guardd.events import EventBus
from guardd.events.feed import Feed
from guardd.ipc.client import Client
from guardd.ipc.protocol import (
    MAX_EVENT_BYTES,
    Op,
    decode_event,
    encode_error,
    encode_event,
    encode_request,
    encode_result,
)
from guardd.ipc.server import IpcServer, Peer, Stream
from guardd.ipc.subscription import Subscription

T = TypeVar("T")
NOT_ME = frozenset({12345})  # the tests run as root: uid 0 is staff here unless made admin


class World:
    """The daemon's side: an audit log whose records reach subscribers through the bus."""

    def __init__(self, audit: AuditLog, bus: EventBus) -> None:
        self.audit = audit
        self.bus = bus


def serve(
    tmp_path: Path, admins: frozenset[int], talk: Callable[[World, Path], T], queue: int = 256
) -> T:
    path = tmp_path / "g.sock"

    async def main() -> T:
        bus = EventBus(queue_size=queue)
        bus.attach(asyncio.get_running_loop())
        audit = AuditLog.open(tmp_path / "audit.jsonl")
        audit.add_listener(bus.publish)
        server = IpcServer(path, admins)

        async def subscribe(peer: Peer, args: dict[str, Any]) -> Stream:
            return Feed(bus, bus.subscribe(peer.uid, peer.uid in admins), audit.head[0])

        async def hello(peer: Peer, args: dict[str, Any]) -> object:
            return {"uid": peer.uid}

        server.register_stream(Op.SUBSCRIBE, subscribe)
        server.register(Op.HELLO, hello)
        await server.start()
        try:
            return await asyncio.to_thread(talk, World(audit, bus), path)
        finally:
            await server.stop()
            audit.close()

    return asyncio.run(main())


def wait(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + 10
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.01)


def test_a_subscriber_gets_each_record_as_it_is_written(tmp_path: Path) -> None:
    def talk(world: World, path: Path) -> None:
        with Subscription(path) as events:
            assert events.ack == {"subscribed": True, "seq": world.audit.head[0]}
            written = world.audit.append("device.decision", {"device": "2-1", "verdict": "blocked"})
            event = events.next_event(timeout=10)
            assert event is not None
            assert (event.seq, event.ts, event.event) == (written.seq, written.ts, written.event)
            assert event.data == {"device": "2-1", "verdict": "blocked"}
            assert events.next_event(timeout=0.05) is None  # nothing more: a timeout, no error

    serve(tmp_path, frozenset({0}), talk)


def test_staff_do_not_hear_of_other_peoples_requests(tmp_path: Path) -> None:
    def talk(world: World, path: Path) -> None:
        with Subscription(path) as events:
            world.audit.append("request.created", {"id": "req-a", "uid": 12345})
            world.audit.append("approvals.keys_loaded", {"approvers": []})
            world.audit.append("request.created", {"id": "req-b", "uid": 0})
            event = events.next_event(timeout=10)
            assert event is not None
            assert event.data["id"] == "req-b"  # the two before it were not for uid 0

    serve(tmp_path, NOT_ME, talk)


def test_a_stuck_subscriber_is_dropped_and_guardd_carries_on(tmp_path: Path) -> None:
    def talk(world: World, path: Path) -> None:
        stuck = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        stuck.connect(str(path))
        stuck.sendall(encode_request(Op.SUBSCRIBE))
        wait(lambda: world.bus.subscribers == 1, "never subscribed")
        for n in range(5000):  # far more than the socket's buffer and the queue hold
            world.audit.append("device.decision", {"device": "2-1", "n": n, "pad": "x" * 512})
            if world.bus.subscribers == 0:
                break
        wait(lambda: world.bus.subscribers == 0, "the stuck subscriber was never dropped")
        assert Client(path).call(Op.HELLO) == {"uid": 0}  # guardd answers as before
        stuck.settimeout(10)
        received = b""
        while chunk := _recv(stuck):
            received += chunk
        stuck.close()
        assert received.count(b"\n") < 5000  # it was cut off, not sent everything

    serve(tmp_path, NOT_ME, talk, queue=16)


def _recv(sock: socket.socket) -> bytes:
    try:
        return sock.recv(65536)
    except ConnectionResetError:
        return b""


def test_a_subscriber_that_speaks_is_hung_up_on(tmp_path: Path) -> None:
    def talk(world: World, path: Path) -> None:
        events = Subscription(path).open()
        wait(lambda: world.bus.subscribers == 1, "never subscribed")
        raw = socket.socket(fileno=socket.dup(events.fileno()))
        raw.sendall(encode_request(Op.HELLO))  # subscribers send nothing after subscribing
        raw.close()
        wait(lambda: world.bus.subscribers == 0, "still subscribed")
        with pytest.raises(GuarddError) as gone:
            events.next_event(timeout=10)
        assert gone.value.code is ErrorCode.UNAVAILABLE
        events.close()

    serve(tmp_path, NOT_ME, talk)


def test_too_many_subscribers_are_refused_with_a_clear_error(tmp_path: Path) -> None:
    def talk(world: World, path: Path) -> None:
        kept = [Subscription(path).open() for _ in range(4)]
        with pytest.raises(GuarddError) as refused:
            Subscription(path).open()
        assert refused.value.code is ErrorCode.UNAVAILABLE
        assert "too many" in refused.value.message
        for s in kept:
            s.close()
        wait(lambda: world.bus.subscribers == 0, "closed subscriptions were kept")
        Subscription(path).open().close()  # room again

    serve(tmp_path, NOT_ME, talk)


def _one_shot_server(path: Path, lines: list[bytes]) -> threading.Thread:
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(path))
    listener.listen(1)

    def answer() -> None:
        conn, _ = listener.accept()
        conn.recv(65536)
        for line in lines:
            conn.sendall(line)
        conn.close()
        listener.close()

    thread = threading.Thread(target=answer)
    thread.start()
    return thread


@pytest.mark.parametrize(
    ("lines", "code"),
    [
        ([encode_result({"subscribed": True, "seq": 1})], ErrorCode.UNAVAILABLE),  # then gone
        ([encode_result({}), b"not json\n"], ErrorCode.INVALID_REQUEST),
        ([encode_result({}), b'{"v":1,"event":{"seq":"1","ts":"","event":"x"}}\n'], None),
        ([encode_result({}), b'{"v":2,"event":{}}\n'], ErrorCode.UNSUPPORTED_VERSION),
        ([encode_result({}), b'{"v":1,"event":' + b"[" * 100 + b"\n"], ErrorCode.INVALID_REQUEST),
        ([encode_result({}), b"x" * (MAX_EVENT_BYTES + 10)], ErrorCode.TOO_LARGE),
    ],
)
def test_the_client_trusts_nothing_guardd_sends(
    tmp_path: Path, lines: list[bytes], code: ErrorCode | None
) -> None:
    path = tmp_path / "fake.sock"
    thread = _one_shot_server(path, lines)
    with Subscription(path) as events, pytest.raises(GuarddError) as refused:
        events.next_event(timeout=10)
    thread.join()
    assert refused.value.code is (code or ErrorCode.INVALID_REQUEST)


def test_a_refusal_of_the_subscription_is_raised(tmp_path: Path) -> None:
    path = tmp_path / "fake.sock"
    refusal = encode_error(GuarddError(ErrorCode.NOT_PERMITTED, "no"))
    thread = _one_shot_server(path, [refusal])
    with pytest.raises(GuarddError) as refused:
        Subscription(path).open()
    thread.join()
    assert refused.value.code is ErrorCode.NOT_PERMITTED


def test_nobody_listening_is_unavailable(tmp_path: Path) -> None:
    with pytest.raises(GuarddError) as refused:
        Subscription(tmp_path / "none.sock").open()
    assert refused.value.code is ErrorCode.UNAVAILABLE


def test_event_lines_round_trip_and_oversized_data_is_left_out() -> None:
    line = encode_event(7, "2026-11-22T10:00:00Z", "device.decision", {"device": "2-1"})
    event = decode_event(line)
    assert (event.seq, event.event, event.data) == (7, "device.decision", {"device": "2-1"})
    huge = encode_event(8, "t", "rules.reload_failed", {"problems": ["p" * 100] * 1000})
    assert len(huge) <= MAX_EVENT_BYTES
    cut = json.loads(huge)["event"]
    assert cut == {
        "seq": 8,
        "ts": "t",
        "event": "rules.reload_failed",
        "data": {},
        "truncated": True,
    }
