"""The home watcher with real inotify: changes reach the callback in one debounced batch;
a root that cannot be watched is reported, not fatal."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

from guardd.cloud.watcher import HomeWatcher


def test_changes_arrive_batched_and_a_missing_root_is_reported(tmp_path: Path) -> None:
    got: list[set[str]] = []
    marker_seen = threading.Event()

    def schedule(fn: Callable[[], None]) -> None:
        threading.Timer(0.05, fn).start()  # the daemon uses its loop; a timer stands in

    def changed(paths: set[str]) -> None:
        got.append(paths)
        if any(p.endswith("/.dropbox") for p in paths):
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
    seen = set().union(*got)
    assert str(folder) in seen
    assert str(folder / ".dropbox") in seen
    assert len(got) <= 3  # batched, not one call per event
