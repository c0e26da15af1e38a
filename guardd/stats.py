"""Latency figures the daemon keeps about itself (bounded memory), shown by `guard-admin stats`."""

from __future__ import annotations

import math
from collections import deque

WINDOW = 10_000


def _percentile(ordered: list[float], pct: float) -> float:
    """Nearest rank (round() would round halves to even and miss the median)."""
    rank = max(0, min(len(ordered) - 1, math.ceil(pct * len(ordered) / 100) - 1))
    return ordered[rank]


class LatencyWindow:
    """The last WINDOW samples of one latency, in seconds."""

    def __init__(self, size: int = WINDOW) -> None:
        self._samples: deque[float] = deque(maxlen=size)
        self.count = 0

    def add(self, seconds: float) -> None:
        """Record one sample."""
        self._samples.append(seconds)
        self.count += 1

    def reset(self) -> None:
        """Forget the samples (a benchmark starts a fresh window)."""
        self._samples.clear()
        self.count = 0

    def summary(self) -> dict[str, float | int]:
        """n, p50, p99 and max in microseconds over the window."""
        if not self._samples:
            return {"n": 0}
        ordered = sorted(self._samples)
        return {
            "n": len(ordered),
            "total": self.count,
            "p50_us": round(_percentile(ordered, 50) * 1e6, 1),
            "p99_us": round(_percentile(ordered, 99) * 1e6, 1),
            "max_us": round(ordered[-1] * 1e6, 1),
        }
