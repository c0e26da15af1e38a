"""LatencyWindow: the daemon's bounded latency figures (nearest-rank percentiles, microseconds)."""

from __future__ import annotations

import random

import pytest

from guardd.stats import WINDOW, LatencyWindow


def test_empty_window() -> None:
    window = LatencyWindow()
    assert window.summary() == {"n": 0}
    assert window.count == 0


def test_one_sample() -> None:
    window = LatencyWindow()
    window.add(0.000250)
    assert window.summary() == {
        "n": 1,
        "total": 1,
        "p50_us": 250.0,
        "p99_us": 250.0,
        "max_us": 250.0,
    }


def test_hundred_samples_in_any_order() -> None:
    samples = [i / 1e6 for i in range(1, 101)]  # 1 µs .. 100 µs
    random.Random(7).shuffle(samples)  # noqa: S311 (a fixed, non-secret order)
    window = LatencyWindow()
    for s in samples:
        window.add(s)
    assert window.summary() == {
        "n": 100,
        "total": 100,
        "p50_us": 50.0,
        "p99_us": 99.0,
        "max_us": 100.0,
    }


def test_values_are_rounded_to_a_tenth_of_a_microsecond() -> None:
    window = LatencyWindow()
    window.add(0.00012349)
    assert window.summary()["max_us"] == 123.5
    window.add(0.00012341)
    assert window.summary()["p50_us"] == 123.4
    window.add(1.5)
    assert window.summary()["max_us"] == 1_500_000.0


def test_window_keeps_only_the_newest_samples_but_counts_all() -> None:
    window = LatencyWindow(size=3)
    window.add(9.0)  # old and slow: falls out of the window
    for s in (0.000001, 0.000002, 0.000003, 0.000004):
        window.add(s)
    summary = window.summary()
    assert summary["n"] == 3
    assert summary["total"] == 5
    assert summary["max_us"] == 4.0
    assert summary["p50_us"] == 3.0
    assert window.count == 5


def test_default_window_is_bounded() -> None:
    window = LatencyWindow()
    for _ in range(WINDOW + 5):
        window.add(0.001)
    assert window.summary()["n"] == WINDOW
    assert window.summary()["total"] == WINDOW + 5


def test_reset_forgets_everything() -> None:
    window = LatencyWindow()
    window.add(0.5)
    window.add(0.7)
    window.reset()
    assert window.count == 0
    assert window.summary() == {"n": 0}
    window.add(0.000010)
    assert window.summary()["total"] == 1
    assert window.summary()["max_us"] == 10.0


@pytest.mark.parametrize("n", [5, 9, 13])
def test_p50_of_an_odd_count_is_the_median(n: int) -> None:
    window = LatencyWindow()
    for i in range(1, n + 1):
        window.add(i / 1e6)
    assert window.summary()["p50_us"] == float((n + 1) // 2)
