"""Staff ask for an exception: who asks comes from the kernel (SO_PEERCRED), not the message."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from conftest import GuarddFactory

from sim.usb import UsbDevice, UsbTestbed, stick

BIN = Path(sys.executable).parent
NOBODY = 65534


def guardctl(
    daemon_socket: Path, *args: str, uid: int | None = None
) -> subprocess.CompletedProcess[str]:
    command = [str(BIN / "guardctl"), "--socket", str(daemon_socket), *args]
    if uid is not None:
        command = ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", *command]
    return subprocess.run(
        command, capture_output=True, text=True, timeout=60, check=False, env=dict(os.environ)
    )


def test_request_records_the_peer_and_reaches_the_exchange(
    testbed: UsbTestbed, guardd: GuarddFactory
) -> None:
    daemon = guardd()
    testbed.plug(stick("CLERK-STICK-1"), port="1")
    daemon.wait_verdict("2-1", "blocked")
    out = guardctl(
        daemon.socket,
        "request",
        "2-1",
        "--reason",
        "governors' papers from the clerk",
        "--for",
        "2d",
        "--read-only",
        "--json",
        uid=NOBODY,
    )
    assert out.returncode == 0, out.stderr
    made = json.loads(out.stdout)
    assert made["state"] == "pending"
    assert (made["user"], made["uid"]) == ("nobody", NOBODY)
    assert made["device"]["serial"] == "CLERK-STICK-1"
    assert made["duration_s"] == 2 * 86400
    assert made["read_only"] is True
    exported = json.loads(
        (daemon.state_dir / "exchange" / "requests" / f"{made['id']}.json").read_text()
    )
    assert exported["user"] == "nobody"
    assert exported["reason"] == "governors' papers from the clerk"
    # Asking again for the same device gives the same pending request.
    again = json.loads(
        guardctl(
            daemon.socket, "request", "2-1", "--reason", "again please", "--json", uid=NOBODY
        ).stdout
    )
    assert again["id"] == made["id"]
    mine = guardctl(daemon.socket, "requests", uid=NOBODY)
    assert "waiting for IT" in mine.stdout
    assert "governors' papers from the clerk" in mine.stdout
    # Root sees none of its own; the audit trail has the request.
    assert json.loads(guardctl(daemon.socket, "requests", "--json").stdout) == []
    events = [json.loads(x) for x in (daemon.state_dir / "audit.jsonl").read_text().splitlines()]
    created = [e for e in events if e["event"] == "request.created"]
    assert created[0]["data"]["uid"] == NOBODY


def test_requests_that_cannot_be_made_say_why(testbed: UsbTestbed, guardd: GuarddFactory) -> None:
    daemon = guardd()
    testbed.plug(stick("SCHOOL-000123"), port="1")  # enrolled: allowed
    testbed.plug(UsbDevice(serial=b"GIFT", interfaces=("080650", "030101")), port="2")
    testbed.plug(stick(b""), port="3")
    daemon.wait_verdict("2-1", "allowed")
    daemon.wait_verdict("2-2", "blocked")
    daemon.wait_verdict("2-3", "blocked")
    cases = {
        ("2-1", "1d", "need it"): "already allowed",
        ("2-2", "1d", "need it"): "malicious",
        ("2-3", "1d", "need it"): "no serial number",
        ("9-9", "1d", "need it"): "no such device",
        ("2-1", "99d", "need it"): "already allowed",
    }
    for (device, duration, reason), expected in cases.items():
        out = guardctl(daemon.socket, "request", device, "--reason", reason, "--for", duration)
        assert out.returncode != 0
        assert expected in out.stderr, out.stderr
        assert "Traceback" not in out.stderr
    testbed.plug(stick("STRANGER-9"), port="4")
    daemon.wait_verdict("2-4", "blocked")
    for duration, expected in (("99d", "5 minutes to 30 days"), ("soon", "90m, 8h, 2d or 1w")):
        out = guardctl(daemon.socket, "request", "2-4", "--reason", "x y z", "--for", duration)
        assert out.returncode == 2
        assert expected in out.stderr
    out = guardctl(daemon.socket, "request", "2-4", "--reason", "  ")
    assert "please say why" in out.stderr
