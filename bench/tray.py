"""The staff tray's memory, and how fast guardd's events reach a subscriber.

Memory: the real guard-tray on a virtual screen (Xvfb, trayer, a session bus with dunst),
connected to a real guardd with three sticks plugged, after it has shown them. Reported as
VmRSS and its peak, and from smaps_rollup the proportional share (PSS) and the private
anonymous memory (what the tray itself costs; the GTK libraries are shared with the desktop).

Events: 1,000 plugs and unplugs under umockdev; for each device.decision record, the time
from the audit record's timestamp to the subscriber reading it.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from datetime import datetime
from pathlib import Path

from bench.stats import memory_kb, summary_us
from guardd.ipc.subscription import Subscription
from sim.daemon import RULES_HEADER, GuarddProcess, wait_for
from sim.screen import Screen, missing_tools
from sim.usb import UsbTestbed, stick
from tray.messages import COLOURS
from tray.state import Status

NOBODY = 65534
PLUGS = 1000


def _smaps(pid: int) -> dict[str, int]:
    fields = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]:
        key, _, value = line.partition(":")
        fields[key] = int(value.split()[0])
    return {"pss_kb": fields["Pss"], "anonymous_kb": fields["Anonymous"]}


def _tray_memory(bed: UsbTestbed, daemon: GuarddProcess, root: Path) -> dict[str, object]:
    missing = missing_tools()
    if missing:
        return {"skipped": f"{', '.join(missing)} not installed"}
    screen = Screen(root / "screen", NOBODY)
    try:
        screen.start()
        tray = screen.start_tray(daemon.socket)
        screen.wait_icon(COLOURS[Status.OK])
        for port in ("1", "2", "3"):
            bed.plug(stick(f"BENCH-TRAY-{port}"), port=port)
        screen.wait_icon(COLOURS[Status.BLOCKED])
        screen.wait_log("notified: ")
        return {**memory_kb(tray.pid), **_smaps(tray.pid)}
    finally:
        screen.stop()


def _event_latency(bed: UsbTestbed, daemon: GuarddProcess) -> dict[str, object]:
    delays: list[float] = []
    with Subscription(daemon.socket) as events:
        for n in range(PLUGS):
            path = bed.plug(stick(f"BENCH-EV-{n:04d}"), port="4")
            while True:
                event = events.next_event(timeout=10)
                if event is None:
                    raise TimeoutError("no event from guardd")
                if event.event == "device.decision" and event.data.get("device") == "2-4":
                    written = datetime.fromisoformat(event.ts.replace("Z", "+00:00"))
                    delays.append(time.time() - written.timestamp())
                    break
            bed.unplug(path)
            wait_for(lambda: daemon.device("2-4") is None, 10, lambda: "not removed")
    return {"record_to_subscriber": summary_us(delays)}


def run() -> dict[str, object]:
    """The tray's memory and the event latency, as JSON-ready figures."""
    root = Path(tempfile.mkdtemp(prefix="guardd-bench-tray-"))
    root.chmod(0o755)
    bed = UsbTestbed(buses=2)
    daemon = GuarddProcess(root / "guardd", bed.root, RULES_HEADER)
    try:
        daemon.start()
        return {"tray": _tray_memory(bed, daemon, root), "events": _event_latency(bed, daemon)}
    finally:
        daemon.stop()
        shutil.rmtree(root, ignore_errors=True)
