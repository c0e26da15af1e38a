"""Small statistics for benchmark samples."""

from __future__ import annotations

import math
import statistics
from pathlib import Path


def percentile(samples: list[float], pct: float) -> float:
    """The pct-th percentile (nearest rank) of samples."""
    ordered = sorted(samples)
    rank = max(0, min(len(ordered) - 1, math.ceil(pct * len(ordered) / 100) - 1))
    return ordered[rank]


def summary_us(samples_s: list[float]) -> dict[str, float]:
    """p50/p99/max of samples given in seconds, reported in microseconds."""
    us = [s * 1e6 for s in samples_s]
    return {
        "n": len(us),
        "p50_us": round(statistics.median(us), 2),
        "p99_us": round(percentile(us, 99), 2),
        "max_us": round(max(us), 2),
    }


def memory_kb(pid: int) -> dict[str, int]:
    """A process's resident memory now (VmRSS) and at its peak (VmHWM), in KiB."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = int(value.split()[0])
    return fields
