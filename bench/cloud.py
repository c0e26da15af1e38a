"""The cloud-sync guard: folder creation to blocked, the start-up crawl of a big home, and
the daemon's idle CPU while it watches that home.

Creation to blocked is measured from outside the daemon: from just before the folder and its
Dropbox markers are made to the moment the folder's mode reads 000 (guardd's block is
visible to every process). The crawl's own time is the daemon's `cloud.crawled` record.
"""

from __future__ import annotations

import gc
import os
import shutil
import tempfile
import time
from pathlib import Path

from bench.stats import memory_kb, summary_us
from sim.daemon import RULES_HEADER, GuarddProcess, wait_for
from sim.usb import UsbTestbed

EVENTS = 200
BIG_FILES = 200_000
FILES_PER_FOLDER = 100
IDLE_S = 60.0


def _daemon(bed: UsbTestbed, workdir: Path, homes: Path) -> GuarddProcess:
    daemon = GuarddProcess(workdir, bed.root, RULES_HEADER, homes=[homes])
    daemon.start(timeout=60)
    return daemon


def _crawled(daemon: GuarddProcess) -> dict[str, object] | None:
    found = [e for e in daemon.events() if e["event"] == "cloud.crawled"]
    return dict(found[0]["data"]) if found else None


def creation_to_blocked(work: Path, bed: UsbTestbed) -> dict[str, object]:
    """p50/p99 from making a Dropbox folder to it being blocked, over EVENTS folders."""
    homes = work / "homes-events"
    home = homes / "staff"
    home.mkdir(parents=True)
    daemon = _daemon(bed, work / "guardd-events", homes)
    samples = []
    try:
        wait_for(lambda: _crawled(daemon) is not None, 30, lambda: "no crawl")
        for i in range(EVENTS):
            folder = home / f"Dropbox {i}"
            t0 = time.perf_counter()
            folder.mkdir()
            (folder / ".dropbox").touch()
            (folder / ".dropbox.cache").mkdir()
            while os.stat(folder).st_mode & 0o777:
                if time.perf_counter() - t0 > 5:
                    raise TimeoutError(f"folder {i} never blocked")
                time.sleep(0.0002)
            samples.append(time.perf_counter() - t0)
    finally:
        daemon.stop()
    result = summary_us(samples)
    return {**result, "target_p99_ms": 250, "met": result["p99_us"] < 250_000}


def _big_home(home: Path) -> int:
    made = 0
    folder_count = BIG_FILES // FILES_PER_FOLDER
    for d in range(folder_count):
        folder = home / f"Documents/term{d // 100}/class{d}"
        folder.mkdir(parents=True, exist_ok=True)
        for f in range(FILES_PER_FOLDER):
            (folder / f"lesson-{f}.txt").touch()
            made += 1
    return made


def _cpu_ticks(pid: int) -> int:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime


def _watches(pid: int) -> int:
    count = 0
    for fd in Path(f"/proc/{pid}/fdinfo").iterdir():
        try:
            count += fd.read_text().count("inotify wd:")
        except OSError:
            continue
    return count


def big_home(work: Path, bed: UsbTestbed) -> dict[str, object]:
    """The crawl of a home with BIG_FILES files (time, RSS), then IDLE_S of idle CPU."""
    homes = work / "homes-big"
    made = _big_home(homes / "staff")
    started = time.perf_counter()
    daemon = _daemon(bed, work / "guardd-big", homes)
    try:
        assert daemon.proc is not None
        pid = daemon.proc.pid
        wait_for(lambda: _crawled(daemon) is not None, 120, lambda: "the crawl never ended")
        startup_s = time.perf_counter() - started
        crawl = _crawled(daemon) or {}
        memory = memory_kb(pid)
        watches = _watches(pid)
        time.sleep(2)  # let the start settle before the idle window
        ticks0, t0 = _cpu_ticks(pid), time.monotonic()
        time.sleep(IDLE_S)
        ticks1, t1 = _cpu_ticks(pid), time.monotonic()
    finally:
        daemon.stop()
    idle_pct = 100.0 * (ticks1 - ticks0) / os.sysconf("SC_CLK_TCK") / (t1 - t0)
    seconds = float(str(crawl.get("seconds", 0)))
    return {
        "files": made,
        "crawl": {
            "seconds": seconds,
            "from_daemon_start_s": round(startup_s, 3),  # start, watches set, crawl, judged
            "folders": crawl.get("folders"),
            "files_seen": crawl.get("files"),
            "target_s": 10,
            "met": startup_s < 10,
        },
        "daemon_rss_kb": memory,
        "rss_met": memory.get("VmHWM", 0) < 60 * 1024,
        "inotify_watches": watches,
        "idle_cpu": {
            "seconds": round(t1 - t0, 1),
            "percent": round(idle_pct, 3),
            "met": idle_pct < 0.5,
        },
    }


def run() -> dict[str, object]:
    """Both cloud benchmarks, each with its own guardd."""
    work = Path(tempfile.mkdtemp(prefix="guardd-bench-cloud-"))
    bed = UsbTestbed(buses=1)
    try:
        return {
            "creation_to_blocked": creation_to_blocked(work, bed),
            "big_home": big_home(work, bed),
        }
    finally:
        del bed
        gc.collect()
        shutil.rmtree(work, ignore_errors=True)
