"""Small statistics for benchmark samples."""

from __future__ import annotations

import math
import statistics


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
