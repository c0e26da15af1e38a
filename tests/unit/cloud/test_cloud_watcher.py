"""The home watcher with real inotify: changes reach the callback in one debounced batch;
a root that cannot be watched is reported, not fatal."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path

from guardd.cloud.watcher import HomeWatcher


def test_changes_arrive_batched_and_a_missing_root_is_reported(tmp_path: Path) -> None:
    got: list[set[tuple[str, bool]]] = []
    marker_seen = threading.Event()

    def schedule(fn: Callable[[], None]) -> None:
        threading.Timer(0.05, fn).start()  # the daemon uses its loop; a timer stands in

    def changed(paths: set[tuple[str, bool]]) -> None:
        got.append(paths)
        if any(p.endswith("/.dropbox") for p, _ in paths):
            marker_seen.set()

    missing = str(tmp_path / "no-such-root")
    watcher = HomeWatcher([str(tmp_path), missing], schedule, changed)
    failures = watcher.start()
    try:
        assert [f.root for f in failures] == [missing]
        assert not failures[0].limit_reached
        folder = tmp_path / "alice" / "Dropbox"
        folder.mkdir(parents=True)
        (folder / ".dropbox").touch()
        assert marker_seen.wait(5)
    finally:
        watcher.stop()
    seen: set[tuple[str, bool]] = set().union(*got)
    assert (str(folder), True) in seen
    assert (str(folder / ".dropbox"), False) in seen
    assert len(got) <= 3  # batched, not one call per event


def test_watchdogs_lost_events_warning_asks_for_a_crawl(tmp_path: Path) -> None:
    crawls: list[str] = []
    watcher = HomeWatcher(
        [str(tmp_path)], lambda fn: fn(), lambda _: None, lambda: crawls.append("x")
    )
    watcher.start()
    try:
        logging.getLogger("watchdog.observers.inotify_c").warning(
            "Inotify queue overflowed; filesystem events were lost"
        )
        logging.getLogger("watchdog.observers.inotify").warning("something unrelated")
    finally:
        watcher.stop()
    logging.getLogger("watchdog.observers.inotify_c").warning("queue overflowed after stop")
    assert crawls == ["x"]
