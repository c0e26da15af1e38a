"""guardd as installed in the QEMU guest: its rules, its verdicts, and sticks plugged into it.

The tests (tests/e2e/) and the bench (bench/usbguard.py) share this: plug a stick through
QMP and time it from device_add to the verdict guardd writes in its audit trail.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sim.qemu import Guest, GuestError

AUDIT = "/var/lib/guardd/audit.jsonl"
RULES_FILE = "/etc/guardd/rules.d/50-e2e.toml"
USB = "/sys/bus/usb/devices"


@dataclass(frozen=True)
class Plug:
    """One stick plugged in: where it landed, guardd's verdict, and how long that took."""

    qemu_id: str
    serial: str
    device: str  # the kernel's name, e.g. "2-1"
    verdict: str
    reason: str
    seconds: float  # QMP device_add sent -> verdict record seen by the guest agent


def record_data(line: str) -> dict[str, Any]:
    """The data of an audit record line (empty if it is not one)."""
    try:
        record = json.loads(line)
    except ValueError:
        return {}
    data = record.get("data", {}) if isinstance(record, dict) else {}
    return data if isinstance(data, dict) else {}


class GuestGuardd:
    """The guest's installed guardd, driven through the agent."""

    def __init__(self, guest: Guest) -> None:
        self.guest = guest
        self.a = guest.a
        self.plugs: list[Plug] = []

    def wait_active(self, timeout: float = 120.0) -> None:
        """Until systemd says guardd is active (Type=notify: after its READY=1)."""
        deadline = time.monotonic() + timeout
        while True:
            state = self.a.sh("systemctl is-active guardd", check=False).strip()
            if state == "active":
                return
            if state == "failed" or time.monotonic() > deadline:
                journal = self.a.sh("journalctl -u guardd --no-pager | tail -20", check=False)
                raise GuestError(f"guardd is {state}:\n{journal}")
            time.sleep(0.5)

    def set_rules(self, text: str) -> None:
        """Replace the test's rules file and have guardd reload."""
        self.a.write_file(RULES_FILE, text.encode())
        self.a.run("guard-admin", "reload")

    def mark(self) -> int:
        """The audit trail's size now: wait for records after it."""
        sizes: dict[str, int] = self.a.call("mark", paths=[AUDIT])["sizes"]
        return sizes[AUDIT]

    def wait_record(self, offset: int, *needles: str, timeout: float = 60.0) -> dict[str, Any]:
        """The data of the first audit record after `offset` holding every needle."""
        reply = self.a.call(
            "wait_line",
            wait=timeout + 10,
            path=AUDIT,
            offset=offset,
            needles=list(needles),
            timeout=timeout,
        )
        if reply["line"] is None:
            raise GuestError(f"no audit record with {needles} within {timeout} s")
        return record_data(reply["line"])

    def plug(self, qemu_id: str, image: Path, serial: str, timeout: float = 60.0) -> Plug:
        """Hot-plug a stick and wait for guardd's decision on it."""
        offset = self.mark()
        waiting = self.a.send(
            "wait_line",
            path=AUDIT,
            offset=offset,
            needles=["device.decision", serial],
            timeout=timeout,
        )
        started = self.guest.plug(qemu_id, image, serial)
        reply = waiting.result(timeout + 10)
        seconds = time.monotonic() - started
        if not reply.get("ok") or reply.get("line") is None:
            raise GuestError(f"no decision on {serial} within {timeout} s: {reply}")
        data = record_data(reply["line"])
        plug = Plug(
            qemu_id,
            serial,
            str(data.get("device")),
            str(data.get("verdict")),
            str(data.get("reason")),
            round(seconds, 4),
        )
        self.plugs.append(plug)
        return plug

    def authorized(self, device: str) -> str:
        """The kernel's `authorized` of a USB device ("0", "1", or "" if it is gone)."""
        return self.a.sh(f"cat {USB}/{device}/authorized 2>/dev/null", check=False).strip()

    def interfaces(self, device: str) -> list[str]:
        """The device's interfaces the kernel has bound (none while it is switched off)."""
        out = self.a.sh(f"cd {USB} && ls -d {device}:* 2>/dev/null", check=False)
        return out.split()

    def disks(self, device: str) -> list[str]:
        """Block devices under the USB device (sdX)."""
        script = (
            f'for d in /sys/block/sd*; do [ -e "$d" ] || continue; '
            f'case "$(readlink -f "$d")" in */{device}/*) basename "$d";; esac; done'
        )
        return self.a.sh(script, check=False).split()

    def wait_disk(self, device: str, timeout: float = 30.0) -> str:
        """The stick's block device, once udev has set it up."""
        deadline = time.monotonic() + timeout
        while True:
            found = self.disks(device)
            if found:
                self.a.run("udevadm", "settle", "--timeout=20", check=False)
                return found[0]
            if time.monotonic() > deadline:
                raise GuestError(f"no block device under {device} within {timeout} s")
            time.sleep(0.3)

    def device_by_serial(self, serial: str) -> str:
        """The kernel's name of the USB device with this serial ("" if none is plugged)."""
        script = f"grep -lx -- '{serial}' {USB}/*/serial 2>/dev/null | head -1"
        found = self.a.sh(script, check=False).strip()
        return found.split("/")[-2] if found else ""

    def devices(self) -> list[dict[str, Any]]:
        """`guardctl devices --json` in the guest."""
        out = self.a.run("guardctl", "devices", "--json")["stdout"]
        found: list[dict[str, Any]] = json.loads(out)
        return found

    def device(self, serial: str) -> dict[str, Any]:
        """guardd's view of the device with this serial."""
        for device in self.devices():
            if device.get("serial") == serial:
                return device
        raise GuestError(f"guardd lists no device with serial {serial}")

    def uevents_under(self, device: str, since: int) -> list[dict[str, str]]:
        """Kernel uevents since `since` for anything below the USB device (interfaces, disks)."""
        events: list[dict[str, str]] = self.a.call("uevents", since=since)["events"]
        return [
            e
            for e in events
            if f"/{device}/" in e.get("DEVPATH", "") + "/"
            and not e.get("DEVPATH", "").endswith(f"/{device}")
        ]

    def uevent_mark(self) -> int:
        """The agent's count of kernel uevents so far."""
        seq: int = self.a.call("mark", paths=[])["seq"]
        return seq
