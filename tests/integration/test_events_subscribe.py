"""Events pushed by a real guardd: each listener, a separate process running as its own user,
gets device events and only its own requests; IT get everything; guardd stopping ends the
stream."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import GuarddFactory

from sim.daemon import GuarddProcess, wait_for
from sim.env import real_env
from sim.usb import UsbTestbed, stick

BIN = Path(sys.executable).parent
NOBODY, OTHER = 65534, 4242


class _AnySeq:
    """Equal to any record number (the ack names the newest record when subscribing)."""

    def __eq__(self, other: object) -> bool:
        return type(other) is int and other > 0

    def __hash__(self) -> int:
        return 0


ANY_SEQ = _AnySeq()

LISTENER = """
import json, sys
from pathlib import Path
from guardd.errors import GuarddError
from guardd.ipc.subscription import Subscription
try:
    with Subscription(Path(sys.argv[1])) as events:
        print(json.dumps({"ack": events.ack}), flush=True)
        while True:
            e = events.next_event(None)
            print(json.dumps({"event": e.event, "data": e.data}), flush=True)
except GuarddError as e:
    print(json.dumps({"gone": e.message}), flush=True)
"""


class Listener:
    """A subscriber process running as `uid`; its lines are kept in a file."""

    def __init__(self, socket: Path, uid: int, out: Path) -> None:
        self.out = out
        command = [sys.executable, "-c", LISTENER, str(socket)]
        if uid != os.getuid():
            command = ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", *command]
        with out.open("wb") as sink:
            self.proc = subprocess.Popen(
                command, stdout=sink, stderr=subprocess.STDOUT, env=real_env()
            )

    def lines(self) -> list[dict[str, Any]]:
        return [json.loads(x) for x in self.out.read_text().splitlines() if x.startswith("{")]

    def events(self, name: str) -> list[dict[str, Any]]:
        return [x["data"] for x in self.lines() if x.get("event") == name]

    def wait_line(self, key: str) -> dict[str, object]:
        """Wait for a line carrying `key` (the ack, or "gone"); return it."""
        wait_for(lambda: any(key in x for x in self.lines()), 15, self.out.read_text)
        return next(x for x in self.lines() if key in x)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
        self.proc.wait(timeout=10)


@pytest.fixture
def listeners(world: Path) -> Iterator[list[Listener]]:
    started: list[Listener] = []
    yield started
    for listener in started:
        listener.stop()


def as_user(uid: int) -> list[str]:
    return ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups"]


def request_as(daemon: GuarddProcess, uid: int, device: str) -> None:
    done = subprocess.run(
        [
            *as_user(uid),
            str(BIN / "guardctl"),
            "--socket",
            str(daemon.socket),
            "request",
            device,
            "--reason",
            "papers for the governors",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=real_env(),
    )
    assert done.returncode == 0, done.stderr


def test_each_listener_hears_devices_and_only_its_own_requests(
    testbed: UsbTestbed, guardd: GuarddFactory, world: Path, listeners: list[Listener]
) -> None:
    daemon = guardd()
    staff, other, it = (
        Listener(daemon.socket, uid, world / f"listener-{uid}.jsonl") for uid in (NOBODY, OTHER, 0)
    )
    listeners += [staff, other, it]
    for listener in listeners:
        assert listener.wait_line("ack")["ack"] == {"subscribed": True, "seq": ANY_SEQ}
    testbed.plug(stick("STAFF-STICK-1"), port="1")
    testbed.plug(stick("OTHER-STICK-2"), port="2")
    daemon.wait_verdict("2-1", "blocked")
    daemon.wait_verdict("2-2", "blocked")
    request_as(daemon, NOBODY, "2-1")
    request_as(daemon, OTHER, "2-2")
    reloaded = subprocess.run(
        [str(BIN / "guard-admin"), "--socket", str(daemon.socket), "reload"],
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert reloaded.returncode == 0
    wait_for(lambda: len(it.events("rules.reloaded")) == 1, 15, lambda: str(it.lines()))
    wait_for(lambda: len(it.events("request.created")) == 2, 15, lambda: str(it.lines()))
    for listener in (staff, other):
        seen = {d["device"] for d in listener.events("device.decision")}
        assert {"2-1", "2-2"} <= seen
        assert listener.events("rules.reloaded") == []  # IT's business
    assert [r["uid"] for r in staff.events("request.created")] == [NOBODY]
    assert [r["uid"] for r in other.events("request.created")] == [OTHER]
    daemon.stop()
    for listener in listeners:
        assert "closed" in str(listener.wait_line("gone")["gone"])
        assert listener.proc.wait(timeout=10) == 0
