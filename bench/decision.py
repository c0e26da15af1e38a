"""Judge devices against 10,000 enrolled drives: the matcher's cost per decision."""

from __future__ import annotations

import random
import time

from bench.stats import summary_us
from rules import DeviceFacts, Matcher, UsbInterface, parse_rules

ENROLLED = 10_000
DECISIONS = 20_000
STORAGE = (UsbInterface(8, 6, 0x50),)


def rules_text(count: int) -> str:
    """A rules file with `count` enrolled drives."""
    drives = (
        f'[[drive]]\nserial = "SCHOOL-{i:06d}"\nvendor_id = "0781"\nproduct_id = "5581"\n'
        f'label = "Stick {i}"\n'
        for i in range(count)
    )
    return "[policy]\nrequire_encryption = true\n" + "\n".join(drives)


def run() -> dict[str, object]:
    """Median and p99 of one decision, half enrolled and half strangers."""
    started = time.perf_counter()
    matcher = Matcher(parse_rules(rules_text(ENROLLED), "bench.toml"))
    parse_s = time.perf_counter() - started
    rng = random.Random(42)
    devices = [
        DeviceFacts(
            id="2-1",
            vendor_id="0781",
            product_id="5581",
            serial=f"SCHOOL-{rng.randrange(2 * ENROLLED):06d}",
            device_class=0,
            interfaces=STORAGE,
        )
        for _ in range(DECISIONS)
    ]
    samples = []
    allowed = 0
    for facts in devices:
        t0 = time.perf_counter()
        decision = matcher.decide_device(facts)
        samples.append(time.perf_counter() - t0)
        allowed += decision.verdict == "allowed"
    return {
        "enrolled_drives": ENROLLED,
        "decisions": DECISIONS,
        "allowed": allowed,
        "parse_rules_s": round(parse_s, 3),
        "decision": summary_us(samples),
        "target_p99_us": 50,
    }
