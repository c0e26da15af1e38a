"""guardd beside USBGuard (Debian's usbguard 1.1.2) on a real kernel: the QEMU guest.

The same guest runs each daemon in turn (never both: they would fight over `authorized`),
with the same policy: allow one serial, block everything else. For each, 20 hot-plugs
through QMP, alternating the allowed stick and an unknown one, timed from device_add:
- allowed: until the kernel binds the stick's interface (its uevent), which happens only
  once the daemon has written authorized=1 (both keep new devices off by default);
- blocked: nothing happens in the kernel, so until the daemon's own record of the decision
  (guardd's audit trail; USBGuard's audit file).
Then each daemon's resident memory (VmRSS, and its peak VmHWM).
Targets (issue 7): guardd's latency at most 1.5x USBGuard's, memory within 3x.
"""

from __future__ import annotations

import os
import shutil
import statistics
import time
from pathlib import Path
from typing import Any

from sim import sticks
from sim.guest_guardd import AUDIT as GUARDD_AUDIT
from sim.guest_guardd import GuestGuardd
from sim.guest_image import build_image
from sim.qemu import AgentClient, Guest, GuestError

PLUGS = 20
ALLOWED = "BENCH-ALLOWED-1"
USBGUARD_AUDIT = "/var/log/usbguard/usbguard-audit.log"
CHECKOUT = Path(__file__).resolve().parent.parent
GUARDD_RULES = (
    f'\n[[drive]]\nserial = "{ALLOWED}"\nvendor_id = "46f4"\nproduct_id = "0001"\nlabel = "bench"\n'
)
# USBGuard's rules: the same allow-by-serial, everything else blocked (ImplicitPolicyTarget).
USBGUARD_RULES = f'allow id 46f4:0001 serial "{ALLOWED}"\n'


def skip_reason() -> str | None:
    """Why this bench cannot run here, if it cannot."""
    if os.environ.get("GUARDD_E2E", "1") == "0":
        return "GUARDD_E2E=0"
    if os.geteuid() != 0 or shutil.which("qemu-system-x86_64") is None:
        return "needs root and qemu-system-x86 (make venv)"
    return None


def _plug_timed(
    guest: Guest, a: AgentClient, log: str, index: int, image: Path, serial: str
) -> tuple[str, float]:
    """Plug one stick; ("allowed" | "blocked", seconds from device_add)."""
    mark = a.call("mark", paths=[log])
    allowed = serial == ALLOWED
    if allowed:
        waiting = a.send(
            "wait_uevent",
            match={"ACTION": "add", "DEVTYPE": "usb_interface"},
            since=mark["seq"],
            timeout=60,
        )
    else:
        waiting = a.send(
            "wait_line", path=log, offset=mark["sizes"][log], needles=[serial], timeout=60
        )
    started = guest.plug(f"b{index}", image, serial)
    reply = waiting.result(70)
    seconds = time.monotonic() - started
    if not reply.get("ok") or (reply.get("event") or reply.get("line")) is None:
        raise GuestError(f"no decision on {serial}: {reply}")
    if allowed:
        # As a person would, leave the stick in until its disk is up: pulled while the kernel
        # still probes it, QEMU's emulated stick sometimes times out the next enumeration.
        a.call(
            "wait_uevent",
            match={"ACTION": "add", "SUBSYSTEM": "block", "DEVTYPE": "disk"},
            since=mark["seq"],
            timeout=15,
        )
    guest.unplug(f"b{index}", forget=True)
    time.sleep(0.5)
    return ("allowed" if allowed else "blocked"), seconds


def _series(guest: Guest, log: str, images: dict[str, Path]) -> dict[str, list[float]]:
    a = guest.a
    times: dict[str, list[float]] = {"allowed": [], "blocked": []}
    _plug_timed(guest, a, log, 0, images["allowed"], ALLOWED)  # warm-up, not counted
    for i in range(1, PLUGS + 1):
        serial = ALLOWED if i % 2 else f"BENCH-UNKNOWN-{i}"
        image = images["allowed"] if i % 2 else images["unknown"]
        kind, seconds = _plug_timed(guest, a, log, i, image, serial)
        times[kind].append(seconds)
    return times


def _memory(a: AgentClient, unit: str) -> dict[str, float]:
    pid = a.sh(f"systemctl show -p MainPID --value {unit}").strip()
    status = a.sh(f"cat /proc/{pid}/status")
    fields = {}
    for line in status.splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = round(int(value.split()[0]) / 1024, 1)
    return {"rss_mb": fields["VmRSS"], "peak_rss_mb": fields["VmHWM"]}


def _summary(times: dict[str, list[float]]) -> dict[str, Any]:
    every = times["allowed"] + times["blocked"]
    out: dict[str, Any] = {"plugs": len(every)}
    for kind, values in (*times.items(), ("all", every)):
        out[kind] = {
            "p50_ms": round(statistics.median(values) * 1000, 1),
            "mean_ms": round(statistics.fmean(values) * 1000, 1),
            "max_ms": round(max(values) * 1000, 1),
            "n": len(values),
        }
    out["samples_ms"] = {k: [round(v * 1000, 1) for v in vs] for k, vs in times.items()}
    return out


def _guardd(guest: Guest, images: dict[str, Path]) -> dict[str, Any]:
    gd = GuestGuardd(guest)
    gd.wait_active()
    gd.set_rules(GUARDD_RULES)
    result = _summary(_series(guest, GUARDD_AUDIT, images))
    result["memory"] = _memory(guest.a, "guardd")
    guest.a.run("systemctl", "stop", "guardd")
    return result


def _usbguard(guest: Guest, images: dict[str, Path]) -> dict[str, Any]:
    a = guest.a
    a.write_file("/etc/usbguard/rules.conf", USBGUARD_RULES.encode(), mode=0o600)
    a.run("systemctl", "start", "usbguard")
    a.sh(f"mkdir -p /var/log/usbguard && touch {USBGUARD_AUDIT}")
    time.sleep(2)  # usbguard forks before it has read its rules: let it settle
    result = _summary(_series(guest, USBGUARD_AUDIT, images))
    result["memory"] = _memory(a, "usbguard")
    result["version"] = a.sh("dpkg-query -W -f='${Version}' usbguard", check=False).strip()
    a.run("systemctl", "stop", "usbguard")
    return result


def _ratio(a: float, b: float) -> float:
    return round(a / b, 2) if b else float("inf")


def run() -> dict[str, Any]:
    """Boot the guest, measure guardd then USBGuard, and the ratios."""
    reason = skip_reason()
    if reason is not None:
        return {"skipped": reason}
    image = build_image(CHECKOUT, CHECKOUT / "build/e2e")
    work = Path(f"/tmp/guardd-bench-{os.getpid()}")
    work.mkdir(exist_ok=True)
    images = {
        "allowed": sticks.blank(work / "allowed.img"),
        "unknown": sticks.blank(work / "unknown.img"),
    }
    guest = Guest(image, work)
    try:
        guest.start()
        guardd = _guardd(guest, images)
        usbguard = _usbguard(guest, images)
    finally:
        guest.stop()
        shutil.rmtree(work, ignore_errors=True)
    return {
        "guardd": guardd,
        "usbguard": usbguard,
        "ratio_latency_p50_all": _ratio(guardd["all"]["p50_ms"], usbguard["all"]["p50_ms"]),
        "ratio_latency_p50_allowed": _ratio(
            guardd["allowed"]["p50_ms"], usbguard["allowed"]["p50_ms"]
        ),
        "ratio_latency_p50_blocked": _ratio(
            guardd["blocked"]["p50_ms"], usbguard["blocked"]["p50_ms"]
        ),
        "ratio_rss": _ratio(guardd["memory"]["rss_mb"], usbguard["memory"]["rss_mb"]),
        "targets": {"latency_ratio_max": 1.5, "rss_ratio_max": 3.0},
    }


if __name__ == "__main__":
    import json

    print(json.dumps(run(), indent=2))
