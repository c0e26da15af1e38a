"""Virus scanning: guardd's Scanner against clamdscan, on the same clamd and the same tree.

Three figures, each against one real clamd (sim.clamd.ClamdProcess, its configuration as the
tests use it: 4 threads, MaxFileSize 10M):
- throughput: a 500 MB tree of 5,000 mixed files scanned by `clamdscan --fdpass --multiscan`
  and by guardd's Scanner (the daemon's default workers, a fresh cache), alternating;
- rescan: the same unchanged tree again, guardd answering from its clean cache, clamdscan
  scanning it again;
- daemon memory: a real guardd (under the umockdev testbed) scanning an enrolled LUKS stick's
  filesystem of 50,000 small files, its resident set sampled every 50 ms until it is ready.

clamd keeps a cache of its own (clean files by MD5, for the database it has loaded). Left
alone, every scan after the first would be answered from it, whoever asked: before each
throughput run clamd is told to RELOAD (a new engine, an empty cache) and the run starts once
the new engine is in. The rescan figures are taken with clamd's cache as the scans before left
it (full): that is what a second clamdscan of the tree costs for real. Its ratio to a cold
clamdscan is given too.
"""

from __future__ import annotations

import dataclasses
import gc
import io
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.stats import memory_kb
from guardd.config import DaemonConfig
from guardd.media.blockdev import is_read_only
from guardd.scanning import Clamd, ScanCache, Scanner, ScanReport, ScanVerdict
from sim.clamd import ClamdProcess
from sim.daemon import RULES_HEADER, GuarddProcess, drive_toml, wait_for
from sim.env import real_env
from sim.media import LoopMedium
from sim.usb import UsbTestbed, stick

TREE_FILES = 5_000
TREE_BYTES = 500_000_000  # ~100 KB a file on average; MB below is 10^6 bytes
MAX_FILE = 8_000_000  # under the sim clamd's MaxFileSize (10M): every file is fully scanned
SIZE_SIGMA = 1.2  # of the log-normal sizes
SEED = 20_261_122
RUNS = 3  # timed runs of each side, alternating; the median is reported
RSS_FILES = 50_000
RSS_FOLDERS = 100
RSS_SAMPLE_S = 0.05
RSS_IMAGE_MB = 1024  # sparse; ext4's default inode ratio then gives 65,536 inodes
SERIAL = "SCHOOL-000124"
DEVICE = "2-1"  # where the stick is plugged (bus 2, port 1)
CLAMDSCAN = shutil.which("clamdscan") or "/usr/bin/clamdscan"
MB = 1e6

WORDS = [
    "the",
    "of",
    "and",
    "to",
    "in",
    "is",
    "was",
    "for",
    "on",
    "that",
    "with",
    "as",
    "by",
    "at",
    "from",
    "this",
    "be",
    "are",
    "or",
    "an",
    "which",
    "school",
    "pupil",
    "teacher",
    "governors",
    "minutes",
    "report",
    "term",
    "class",
    "lesson",
    "homework",
    "exam",
    "marks",
    "science",
    "history",
    "geography",
    "maths",
    "english",
    "art",
    "music",
    "sport",
    "library",
    "budget",
    "meeting",
    "notes",
    "agenda",
    "attendance",
    "timetable",
    "assembly",
    "trip",
    "consent",
    "letter",
    "parents",
]


def log(message: str) -> None:
    """A progress line on stderr (stdout carries the JSON)."""
    print(f"[bench scan] {message}", file=sys.stderr, flush=True)


# -- the tree -------------------------------------------------------------------------------


def _sizes(rng: random.Random, count: int, total: int) -> list[int]:
    """`count` log-normal sizes, capped at MAX_FILE, scaled to add up to about `total`."""
    raw = [rng.lognormvariate(0.0, SIZE_SIGMA) for _ in range(count)]
    scale = total / sum(raw)
    for _ in range(20):  # capping loses bytes: scale the rest up until the total is right
        sizes = [max(64, min(MAX_FILE, int(r * scale))) for r in raw]
        short = total - sum(sizes)
        if abs(short) < total // 1000:
            break
        scale *= 1 + short / max(1, sum(s for s in sizes if s < MAX_FILE))
    return sizes


def _text(rng: random.Random, size: int, corpus: bytes) -> bytes:
    start = rng.randrange(0, len(corpus) - size) if size < len(corpus) else 0
    return (corpus * (size // len(corpus) + 1))[start : start + size]


def _office(rng: random.Random, size: int, corpus: bytes, serial: int) -> bytes:
    """A .docx-shaped zip: XML parts deflated, one 'media' part stored (like a JPEG)."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("[Content_Types].xml", f"<?xml version='1.0'?><Types n='{serial}'/>")
        z.writestr("docProps/core.xml", f"<cp:coreProperties><dc:title>Doc {serial}")
        xml = b"<w:document><w:body><w:p><w:t>" + _text(rng, size // 2, corpus) + b"</w:t>"
        z.writestr("word/document.xml", xml)
        # the picture fills the file up to its size (the XML shrank when deflated)
        media = max(16, size - out.tell() - 200)
        z.writestr("word/media/image1.jpeg", rng.randbytes(media), zipfile.ZIP_STORED)
    return out.getvalue()


def build_tree(root: Path, files: int = TREE_FILES, total: int = TREE_BYTES) -> dict[str, Any]:
    """Write the deterministic mixed tree under root: 50 folders, text, random binary and
    office-like zips; return what was made."""
    rng = random.Random(SEED)
    corpus = " ".join(rng.choice(WORDS) for _ in range(400_000)).encode()
    kinds = {"text": 0, "binary": 0, "office_zip": 0}
    written = 0
    for i, size in enumerate(_sizes(rng, files, total)):
        roll = rng.random()
        folder = root / f"dept{i % 50:02d}" / f"year{i % 7}"
        folder.mkdir(parents=True, exist_ok=True)
        if roll < 0.45:
            kind, name = "text", f"notes{i:05d}.txt"
            data = f"file {i}\n".encode() + _text(rng, size, corpus)
        elif roll < 0.85:
            kind, name = "binary", f"data{i:05d}.bin"
            data = rng.randbytes(size)
        else:
            kind, name = "office_zip", f"report{i:05d}.docx"
            data = _office(rng, size, corpus, i)
        (folder / name).write_bytes(data)
        kinds[kind] += 1
        written += len(data)
    return {"files": files, "bytes": written, "kinds": kinds, "seed": SEED}


def warm_up(root: Path) -> dict[str, Any]:
    """Read every file once, so no timed run pays for the disk and all pay the same."""
    started = time.perf_counter()
    total = 0
    for folder, _, names in os.walk(root):
        for name in names:
            with open(os.path.join(folder, name), "rb", buffering=0) as f:
                while chunk := f.read(1 << 20):
                    total += len(chunk)
    return {"bytes": total, "seconds": round(time.perf_counter() - started, 2)}


def tmpfs(path: Path) -> bool:
    """Whether path lives on a tmpfs (or ramfs): then the tree is kept elsewhere."""
    best, fstype = "", ""
    for line in Path("/proc/self/mounts").read_text().splitlines():
        parts = line.split()
        mount = parts[1].replace("\\040", " ")
        if (str(path) + "/").startswith(mount.rstrip("/") + "/") and len(mount) >= len(best):
            best, fstype = mount, parts[2]
    return fstype in ("tmpfs", "ramfs")


def bench_dir() -> Path:
    """A base folder on a real (disk-backed) filesystem for the tree."""
    for candidate in (Path(tempfile.gettempdir()), Path("/var/tmp"), Path.cwd() / "build"):
        if candidate.is_dir() and not tmpfs(candidate):
            return candidate
    raise RuntimeError("no disk-backed folder for the benchmark tree")


# -- clamd and the two scanners --------------------------------------------------------------


def _clamd_cpu_s(clamd: ClamdProcess) -> float:
    """CPU seconds clamd has used so far (all its threads)."""
    assert clamd.proc is not None
    fields = Path(f"/proc/{clamd.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _steal_s() -> float:
    """The machine's stolen time so far (a busy host): reported beside the runs."""
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()
    return int(fields[8]) / os.sysconf("SC_CLK_TCK")


def clamd_settings(clamd: ClamdProcess) -> dict[str, str]:
    """The clamd.conf settings that matter here (threads, limits)."""
    wanted = ("MaxThreads", "MaxFileSize", "MaxScanSize", "StreamMaxLength")
    lines = (line.split(None, 1) for line in clamd.config.read_text().splitlines())
    return {k: v for k, v in (x for x in lines if len(x) == 2) if k in wanted}


def empty_clamd_cache(clamd: ClamdProcess, timeout: float = 60.0) -> None:
    """RELOAD, and wait until clamd has swapped its new engine (and so an empty cache) in."""
    marker = "Activating the newly loaded database"
    before = clamd.log_text().count(marker)
    if clamd.command(b"RELOAD") != b"RELOADING":
        raise RuntimeError(f"clamd refused RELOAD:\n{clamd.log_text()[-2000:]}")
    deadline = time.monotonic() + timeout
    while clamd.log_text().count(marker) <= before:
        if time.monotonic() > deadline:
            raise RuntimeError("clamd did not load its database again")
        time.sleep(0.02)
    # clamd's main loop logs that line, then swaps the engine, then reads commands again:
    # once it answers, the new engine is in.
    if clamd.command(b"PING") != b"PONG":
        raise RuntimeError("clamd did not answer after RELOAD")


@dataclasses.dataclass
class Timed:
    """One timed run: wall seconds, CPU seconds of the scanner and of clamd, the machine's
    stolen time meanwhile, and the scanner's report (guardd's only)."""

    seconds: float
    client_cpu_s: float
    clamd_cpu_s: float
    steal_s: float
    report: ScanReport | None = None

    def json(self) -> dict[str, float]:
        return {
            "seconds": round(self.seconds, 3),
            "client_cpu_s": round(self.client_cpu_s, 2),
            "clamd_cpu_s": round(self.clamd_cpu_s, 2),
            "steal_s": round(self.steal_s, 2),
        }


def _timed(clamd: ClamdProcess, run: Callable[[], ScanReport | None]) -> Timed:
    own, children = resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN
    cpu0 = [resource.getrusage(w) for w in (own, children)]
    clamd0, steal0 = _clamd_cpu_s(clamd), _steal_s()
    started = time.perf_counter()
    report = run()
    seconds = time.perf_counter() - started
    cpu1 = [resource.getrusage(w) for w in (own, children)]
    client = sum(
        b.ru_utime - a.ru_utime + b.ru_stime - a.ru_stime for a, b in zip(cpu0, cpu1, strict=True)
    )
    return Timed(seconds, client, _clamd_cpu_s(clamd) - clamd0, _steal_s() - steal0, report)


def clamdscan(clamd: ClamdProcess, tree: Path) -> Timed:
    """`clamdscan --fdpass --multiscan` of the tree: one IDSESSION, descriptors pipelined."""

    def scan() -> None:
        done = subprocess.run(
            [CLAMDSCAN, f"--config-file={clamd.config}", "--fdpass", "--multiscan", str(tree)],
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
            env=real_env(),
        )
        if done.returncode != 0 or "Infected files: 0" not in done.stdout:
            raise RuntimeError(f"clamdscan exited {done.returncode}: {done.stdout[-2000:]}")

    return _timed(clamd, scan)


def default_workers() -> int:
    """The daemon's scan_workers when guardd.toml does not say."""
    [default] = [f.default for f in dataclasses.fields(DaemonConfig) if f.name == "scan_workers"]
    assert isinstance(default, int)
    return default


def guardd_scan(clamd: ClamdProcess, tree: Path, cache: ScanCache, files: int) -> Timed:
    """guardd's Scanner over the tree, as the daemon builds it (its default workers)."""
    scanner = Scanner(Clamd(str(clamd.socket)), cache, workers=default_workers())
    timed = _timed(clamd, lambda: scanner.scan_tree(tree))
    report = timed.report
    assert report is not None
    if report.verdict is not ScanVerdict.CLEAN or report.files_scanned != files:
        raise RuntimeError(f"guardd's scan went wrong: {report.to_json()}")
    return timed


def _side(runs: list[Timed], size: int, files: int) -> dict[str, Any]:
    seconds = statistics.median(r.seconds for r in runs)
    return {
        "seconds": round(seconds, 3),
        "files_per_s": round(files / seconds, 1),
        "mb_per_s": round(size / MB / seconds, 1),
        "runs": [r.json() for r in runs],
    }


# -- 1 and 2: throughput and rescan -------------------------------------------------------------


def throughput(
    clamd: ClamdProcess, tree: Path, made: dict[str, Any], work: Path
) -> tuple[dict[str, Any], ScanCache]:
    """RUNS of each, alternating (clamdscan first, then guardd first), clamd's cache emptied
    before every run; returns the figures and the cache of guardd's last run (full)."""
    files, size = made["files"], made["bytes"]
    ours: list[Timed] = []
    theirs: list[Timed] = []
    order: list[str] = []
    cache: ScanCache | None = None
    for i in range(RUNS):
        sides = ["clamdscan", "guardd"] if i % 2 == 0 else ["guardd", "clamdscan"]
        for side in sides:
            empty_clamd_cache(clamd)
            if side == "clamdscan":
                theirs.append(clamdscan(clamd, tree))
            else:
                if cache is not None:
                    cache.close()
                cache = ScanCache(work / f"scancache-{i}.db")  # fresh: nothing known
                ours.append(guardd_scan(clamd, tree, cache, files))
            order.append(side)
            log(f"throughput run {len(order)}/{2 * RUNS}: {side} {_last(ours, theirs, side)}")
    assert cache is not None
    clamdscan_side, guardd_side = _side(theirs, size, files), _side(ours, size, files)
    result = {
        "workers": default_workers(),
        "order": order,
        "clamd_cache": "emptied (RELOAD, new engine swapped in) before every run",
        "clamdscan": clamdscan_side,
        "guardd": guardd_side,
        "ratio": round(clamdscan_side["seconds"] / guardd_side["seconds"], 3),
        "target_ratio": 1.0,
        "note": (
            "clamd's work is the same for both and keeps every CPU busy; guardd also reads "
            "and hashes every byte (SHA-256, its cache's key) and checks every file for "
            "changes after clamd answered: client_cpu_s is what that costs"
        ),
    }
    return result, cache


def _last(ours: list[Timed], theirs: list[Timed], side: str) -> str:
    run = (ours if side == "guardd" else theirs)[-1]
    return f"{run.seconds:.2f} s (cpu {run.client_cpu_s:.2f} s, clamd {run.clamd_cpu_s:.2f} s)"


def rescan(
    clamd: ClamdProcess, tree: Path, made: dict[str, Any], cache: ScanCache, cold: float
) -> dict[str, Any]:
    """The unchanged tree again: clamdscan (clamd's cache full from the scans before) and
    guardd with the cache its last scan filled; RUNS of each, alternating."""
    files, size = made["files"], made["bytes"]
    clamdscan(clamd, tree)  # not timed: clamd's cache now holds the whole tree, whoever ran last
    ours: list[Timed] = []
    theirs: list[Timed] = []
    for i in range(RUNS):
        theirs.append(clamdscan(clamd, tree))
        ours.append(guardd_scan(clamd, tree, cache, files))
        log(
            f"rescan {i + 1}/{RUNS}: clamdscan {theirs[-1].seconds:.2f} s, "
            f"guardd from its cache {ours[-1].seconds:.2f} s"
        )
    from_cache = [r.report.from_cache for r in ours if r.report is not None]
    if min(from_cache) != files:
        raise RuntimeError(f"guardd's rescan did not come from its cache: {from_cache}")
    result: dict[str, Any] = {
        "clamd_cache": "as the scans before left it: every file known clean to clamd too",
        "clamdscan": _side(theirs, size, files),
        "guardd_cached": {**_side(ours, size, files), "from_cache": from_cache},
    }
    guardd_s = result["guardd_cached"]["seconds"]
    result["ratio"] = round(result["clamdscan"]["seconds"] / guardd_s, 2)
    result["ratio_vs_clamdscan_cold"] = round(cold / guardd_s, 2)
    result["target_ratio"] = 10.0
    result["note"] = (
        "clamdscan's rescan is answered by clamd's own cache (which hashes every file too); "
        "guardd's never reaches clamd. ratio_vs_clamdscan_cold: against a clamd with an empty "
        "cache, as after every database update"
    )
    return result


# -- 3: the daemon's memory while it scans 50,000 files -----------------------------------------


class _Sampler(threading.Thread):
    """Reads the daemon's VmRSS and VmHWM every RSS_SAMPLE_S until stopped; keeps the
    largest VmRSS seen and the last VmHWM (the kernel's own peak, between samples too)."""

    def __init__(self, pid: int) -> None:
        super().__init__(name="rss-sampler", daemon=True)
        self.pid = pid
        self.peak_kb = 0
        self.hwm_kb = 0
        self.samples = 0
        self._finished = threading.Event()

    def run(self) -> None:
        while not self._finished.is_set():
            try:
                status = memory_kb(self.pid)
            except OSError:
                return  # the daemon is gone
            self.peak_kb = max(self.peak_kb, status["VmRSS"])
            self.hwm_kb = status["VmHWM"]
            self.samples += 1
            self._finished.wait(RSS_SAMPLE_S)

    def stop(self) -> None:
        self._finished.set()
        self.join()


def small_files(count: int = RSS_FILES) -> dict[str | bytes, bytes]:
    """`count` small text files (80 B to 3 KB, no two alike) in RSS_FOLDERS folders."""
    rng = random.Random(SEED + 1)
    files: dict[str | bytes, bytes] = {}
    for i in range(count):
        line = f"pupil {i}: " + " ".join(rng.choices(WORDS, k=8)) + "\n"
        files[f"class{i % RSS_FOLDERS:03d}/pupil{i:05d}.txt"] = line.encode() * rng.randint(1, 40)
    return files


def _judged(daemon: GuarddProcess) -> bool:
    return bool((daemon.device(DEVICE) or {}).get("volumes"))


def _wait_ready(daemon: GuarddProcess, timeout: float) -> dict[str, Any]:
    """Poll the device (every 0.25 s: the daemon is busy) until it is ready."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        device = daemon.device(DEVICE) or {}
        if device.get("verdict") == "ready":
            return device
        if device.get("verdict") in ("infected", "scan-failed", "blocked"):
            raise RuntimeError(f"the stick was not scanned clean: {device}")
        time.sleep(0.25)
    raise TimeoutError(f"the stick never became ready: {daemon.device(DEVICE)}")


def daemon_memory(clamd: ClamdProcess, work: Path) -> dict[str, Any]:
    """A real guardd: an enrolled LUKS stick plugged, its unlocked mapping a loop-mounted
    ext4 of RSS_FILES files; the daemon's resident set sampled until the stick is ready."""
    if "libumockdev-preload" not in os.environ.get("LD_PRELOAD", ""):
        raise RuntimeError("needs umockdev's preload: run `make bench`")
    log(f"making an ext4 image of {RSS_FILES:,} small files")
    made = time.perf_counter()
    medium = LoopMedium.create(work / "stick.img", small_files(), size_mb=RSS_IMAGE_MB)
    image_s = time.perf_counter() - made
    bed = UsbTestbed(buses=2)
    rules = RULES_HEADER + drive_toml(SERIAL, "Bench LUKS stick")
    daemon = GuarddProcess(work / "guardd", bed.root, rules, clamd_socket=clamd.socket)
    try:
        daemon.start()
        assert daemon.proc is not None
        pid = daemon.proc.pid
        spec = stick(SERIAL, "crypto_LUKS")
        path = bed.plug(spec, port="1")
        daemon.wait_verdict(DEVICE, "allowed")
        [container] = bed.add_volumes(path, spec)
        wait_for(lambda: _judged(daemon), 10, lambda: "the volume was never judged")
        bed.add_mapping("dm-0", container, medium.devnode, medium.numbers, "ext4")
        wait_for(lambda: is_read_only(medium.devnode), 10, lambda: "never held read-only")
        before = memory_kb(pid)
        sampler = _Sampler(pid)
        sampler.start()
        started = time.perf_counter()
        medium.mount(work / "media" / "stick")  # as the desktop does: the scan starts
        log(f"scanning {RSS_FILES:,} files in the daemon")
        try:
            ready = _wait_ready(daemon, timeout=300)
        finally:
            sampler.stop()
        seconds = time.perf_counter() - started
    finally:
        daemon.stop()
        medium.close()
        del bed
        gc.collect()
    scan = ready["scan"]
    if scan["files_scanned"] != RSS_FILES:
        raise RuntimeError(f"the daemon scanned {scan['files_scanned']} files, not {RSS_FILES}")
    return {
        "files": RSS_FILES,
        "image": {"fs": "ext4", "size_mb": RSS_IMAGE_MB, "made_s": round(image_s, 1)},
        "workers": default_workers(),
        "daemon_under": "umockdev's preload (as in the tests)",
        "sample_interval_s": RSS_SAMPLE_S,
        "samples": sampler.samples,
        "rss_before_scan_kb": before["VmRSS"],
        "peak_vm_rss_sampled_kb": sampler.peak_kb,
        "vm_hwm_kb": sampler.hwm_kb,
        "peak_rss_mb": round(max(sampler.peak_kb, sampler.hwm_kb) / 1024, 1),
        "target_peak_rss_mb": 80,
        "scan_seconds_in_daemon": scan["seconds"],
        "mount_to_ready_s": round(seconds, 2),
        "files_per_s": round(RSS_FILES / scan["seconds"], 1),
        "clamd_excluded": True,
    }


# -- all of it ----------------------------------------------------------------------------------


def run() -> dict[str, object]:
    """The three scanning benchmarks, one clamd, one tree."""
    base = bench_dir()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="guardd-bench-scan-", dir=base) as tmp:
        work = Path(tmp)
        clamd = ClamdProcess(work / "clamd")
        clamd.start()
        try:
            log(f"writing the tree ({TREE_FILES:,} files, {TREE_BYTES / MB:,.0f} MB) in {base}")
            tree = work / "tree"
            t0 = time.perf_counter()
            made = build_tree(tree)
            made["written_s"] = round(time.perf_counter() - t0, 1)
            made["where"] = f"{base} (disk-backed: not a tmpfs)"
            warm = warm_up(tree)
            warm["note"] = "read once before the first timed run: every run reads the page cache"
            version = Clamd(str(clamd.socket)).version()
            settings = clamd_settings(clamd)
            speed, cache = throughput(clamd, tree, made, work)
            again = rescan(clamd, tree, made, cache, speed["clamdscan"]["seconds"])
            cache.close()
            shutil.rmtree(tree)
            memory = daemon_memory(clamd, work)
        finally:
            clamd.stop()
    return {
        "tree": made,
        "warm_up": warm,
        "clamd": {
            "engine": version.engine,
            "db_version": version.db_version,
            "config": settings,
        },
        "cpu_count": os.cpu_count(),
        "throughput": speed,
        "rescan": again,
        "daemon_memory": memory,
        "total_s": round(time.perf_counter() - started, 1),
    }
