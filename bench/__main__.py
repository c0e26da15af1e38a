"""`make bench`: run every benchmark, print the figures, write them as JSON."""

from __future__ import annotations

import json
import platform
import sys
import time
from pathlib import Path

from bench import cloud, decision, requests, scan, signing, tray, uevents, usbguard

RESULTS = Path("bench/results")


def main() -> int:
    """Run the benchmarks in turn; JSON to stdout and to bench/results/."""
    report = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "python": platform.python_version(),
        "decision": decision.run(),
        "uevents": uevents.run(),
        "scan": scan.run(),
        "signing": signing.run(),
        "requests": requests.run(),
        "cloud": cloud.run(),
        "tray": tray.run(),
        "usbguard": usbguard.run(),  # QEMU guest: guardd beside USBGuard (GUARDD_E2E=0 skips)
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"bench-{time.strftime('%Y%m%d-%H%M%S')}.json"
    text = json.dumps(report, indent=2)
    out.write_text(text + "\n")
    (RESULTS / "latest.json").write_text(text + "\n")
    print(text)
    print(f"written to {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
