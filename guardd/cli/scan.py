"""`guard-admin scan PATH [--json]`: scan a folder (a mounted medium) with clamd, as guardd would.

Exit status: 0 clean, 1 infected, 2 anything else (not fully scanned, clamd not running,
no such folder, a bad config).
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
from pathlib import Path

from guardd.cli.common import print_json
from guardd.config import DEFAULT_CLAMD_SOCKET, DEFAULT_CONFIG, DaemonConfig, load_config
from guardd.errors import GuarddError
from guardd.scanning import Clamd, Progress, ScanCache, Scanner, ScanReport, ScanVerdict

PROG = "guard-admin"
CACHE_NAME = "scancache.db"  # in the daemon's state folder: guard-admin shares its cache
EXIT_CLEAN = 0
EXIT_INFECTED = 1
EXIT_NOT_CLEAN = 2

_LABELS = {
    "limits-exceeded": "TOO BIG",
    "unreadable": "UNREADABLE",
    "changed": "CHANGED",
    "error": "ERROR",
}


def _fail(message: str) -> int:
    print(f"{PROG}: {message}", file=sys.stderr)
    return EXIT_NOT_CLEAN


def _config(path: Path | None) -> DaemonConfig | None:
    """The given config; else the default one if this machine has it; else none (defaults)."""
    if path is not None:
        return load_config(path)
    return load_config(DEFAULT_CONFIG) if DEFAULT_CONFIG.exists() else None


def _cache(config: DaemonConfig | None) -> ScanCache | None:
    """The daemon's scan cache, when this user may open it (scanning works without)."""
    if config is None:
        return None
    try:
        return ScanCache(config.state_dir / CACHE_NAME)
    except (OSError, sqlite3.Error):
        return None


def _show_progress(progress: Progress) -> None:
    print(
        f"\rscanning: {progress.files_done:,} of {progress.files_total:,} files",
        end="",
        file=sys.stderr,
        flush=True,
    )


def print_report(report: ScanReport) -> None:
    """The human report: the reason, then one line per infected file and per problem."""
    print(report.reason)
    for found in report.infected:
        print(f"  INFECTED    {found.display_path}  ({found.signature})")
    for problem in report.problems:
        label = _LABELS.get(str(problem.outcome), str(problem.outcome).upper())
        print(f"  {label:<10}  {problem.display_path}  ({problem.signature or problem.detail})")
    if report.omitted:
        print(f"  ... and {report.omitted:,} more not listed")


def cmd_scan(args: argparse.Namespace) -> int:
    """Scan `args.path`; print the report (`args.json`: as JSON); exit 0/1/2 as above."""
    path: Path = args.path
    if not path.exists():
        return _fail(f"{path}: no such folder")
    if not path.is_dir():
        return _fail(f"{path}: not a folder")
    try:
        config = _config(args.config)
    except GuarddError as e:
        return _fail(e.message)
    socket = config.clamd_socket if config else DEFAULT_CLAMD_SOCKET
    workers = config.scan_workers if config else 4
    cache = _cache(config)
    interactive = not args.json and sys.stderr.isatty()
    try:
        report = Scanner(Clamd(str(socket)), cache, workers=workers).scan_tree(
            path, progress=_show_progress if interactive else None
        )
    finally:
        if cache is not None:
            cache.close()
    if interactive:
        print(file=sys.stderr)
    if args.json:
        print_json(report.to_json())
    else:
        print_report(report)
    if report.verdict is ScanVerdict.CLEAN:
        return EXIT_CLEAN
    return EXIT_INFECTED if report.verdict is ScanVerdict.INFECTED else EXIT_NOT_CLEAN
