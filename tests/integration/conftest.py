"""Integration fixtures: a umockdev testbed and a real guardd child process watching it."""

from __future__ import annotations

import gc
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from sim.daemon import RULES_HEADER, GuarddProcess, drive_toml
from sim.usb import UsbTestbed

UNDER_UMOCKDEV = "libumockdev-preload" in os.environ.get("LD_PRELOAD", "")

ENROLLED = RULES_HEADER + "".join(
    [
        drive_toml("SCHOOL-000123", "Office stick 12"),
        drive_toml("SCHOOL-000124", "Head's LUKS stick"),
        drive_toml("SCHOOL-000125", "Exams BitLocker stick"),
        drive_toml("SCHOOL-000126", "Plain stick (never encrypted)"),
        drive_toml("SCHOOL-000127", "Sandisk stick", vendor_id="0781", product_id="5581"),
        drive_toml("SCHOOL-CAM-1", "Art department camera"),
    ]
)


@pytest.fixture
def testbed() -> Iterator[UsbTestbed]:
    """A fresh mock /sys with two USB controllers (kernel default: authorized_default=1)."""
    if not UNDER_UMOCKDEV:
        pytest.skip("needs umockdev's preload: run the tests with `make test`")
    bed = UsbTestbed(buses=2)
    yield bed
    del bed
    gc.collect()


GuarddFactory = Callable[..., GuarddProcess]


@pytest.fixture
def world() -> Iterator[Path]:
    """A folder other users can traverse (pytest's tmp_path is private to root), so tests can
    talk to the socket as an unprivileged member of staff."""
    path = Path(tempfile.mkdtemp(prefix="guardd-test-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def guardd(testbed: UsbTestbed, world: Path) -> Iterator[GuarddFactory]:
    """Start a real guardd on the testbed (rules given, or the enrolled set); stopped after."""
    started: list[GuarddProcess] = []

    def start(
        rules: str = ENROLLED,
        workdir: Path | None = None,
        clamd_socket: Path | None = None,
        homes: list[Path] | None = None,
    ) -> GuarddProcess:
        daemon = GuarddProcess(
            workdir or world / "guardd", testbed.root, rules, clamd_socket, homes
        )
        daemon.start()
        started.append(daemon)
        return daemon

    yield start
    for daemon in started:
        daemon.stop()
