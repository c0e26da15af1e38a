"""Virus scanning: guardd's Scanner against clamdscan, on the same clamd and the same tree.

Three figures, each measured against a real clamd (sim.clamd.ClamdProcess):
- throughput: a 500 MB tree of 5,000 mixed files scanned by `clamdscan --fdpass --multiscan`
  and by guardd's Scanner (the daemon's default workers, a fresh cache), alternating;
- rescan: the same unchanged tree again, guardd answering from its clean cache, clamdscan
  scanning it again;
- daemon memory: a real guardd scanning an enrolled stick's filesystem of 50,000 files, its
  resident set sampled every 50 ms until the drive is ready.

clamd keeps its own cache of clean files (by MD5, per loaded database). Left alone it would
make every scan after the first one a cache hit inside clamd, whoever asked: before each
throughput run clamd is told to RELOAD (a new engine, an empty cache) and the run starts once
the reload is done. The rescan figures are taken with clamd's cache as the previous scan left
it, which is what scanning a tree again costs for real.
"""

from __future__ import annotations

import io
import math
import os
import random
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

from guardd.config import DaemonConfig
from guardd.scanning import Clamd, ScanCache, Scanner, ScanReport
from sim.clamd import ClamdProcess
from sim.env import real_env

TREE_FILES = 5_000
TREE_BYTES = 500_000_000  # ~100 KB a file on average
MAX_FILE = 8_000_000  # under the sim clamd's MaxFileSize (10M): every file is fully scanned
SIZE_SIGMA = 1.2  # of the log-normal sizes
SEED = 20_261_122
RUNS = 2  # timed runs of each side, alternating; the median is reported
RSS_FILES = 50_000
RSS_SAMPLE_S = 0.05

WORDS = (
    "the of and to in is was for on that with as by at from this be are or an which have "
    "school pupil teacher governors minutes report term class lesson homework exam marks "
    "science history geography maths english art music sport library budget meeting notes "
    "agenda attendance timetable assembly trip consent letter parents staff review plan"
).split()


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
    body = (corpus * (size // len(corpus) + 1))[start : start + size]
    return body


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
