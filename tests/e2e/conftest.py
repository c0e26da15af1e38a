"""The QEMU tier's fixtures: one guest boot shared by every scenario of a module.

Skipped with GUARDD_E2E=0 (documented in the README), when not root, or under umockdev's
preload (the tier needs the real kernel's devices, not a mock /sys).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path

import pytest

from sim.guest_guardd import GuestGuardd
from sim.guest_image import GuestImage, build_image
from sim.qemu import Guest

CHECKOUT = Path(__file__).resolve().parent.parent.parent
BUILD = CHECKOUT / "build/e2e"
ARTEFACTS = CHECKOUT / "tests/artefacts"


def _skip_reason() -> str | None:
    if os.environ.get("GUARDD_E2E", "1") == "0":
        return "QEMU tier skipped (GUARDD_E2E=0)"
    if "libumockdev-preload" in os.environ.get("LD_PRELOAD", ""):
        return "the QEMU tier runs outside umockdev: make test-e2e"
    if os.geteuid() != 0:
        return "the QEMU tier builds a root filesystem: run as root"
    if shutil.which("qemu-system-x86_64") is None or shutil.which("debootstrap") is None:
        return "qemu-system-x86 and debootstrap are missing: make venv installs them"
    return None


@pytest.fixture(scope="session")
def guest_image() -> GuestImage:
    """The guest image for this checkout (built once, cached in build/e2e)."""
    reason = _skip_reason()
    if reason is not None:
        pytest.skip(reason)
    return build_image(CHECKOUT, BUILD)


@pytest.fixture(scope="session")
def workdir() -> Iterator[Path]:
    """Stick images and the guest's sockets (short paths: unix sockets)."""
    path = Path(tempfile.mkdtemp(prefix="guardd-e2e-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="module")
def guest(guest_image: GuestImage, workdir: Path) -> Iterator[Guest]:
    """A booted guest, shared by the scenarios of one module; its console log is kept as an
    artefact."""
    folder = Path(tempfile.mkdtemp(prefix="q-", dir=workdir))
    vm = Guest(guest_image, folder)
    try:
        vm.start()
        yield vm
    finally:
        vm.stop()
        ARTEFACTS.mkdir(parents=True, exist_ok=True)
        if vm.console.exists():
            shutil.copy(vm.console, ARTEFACTS / "e2e-console.log")


@pytest.fixture(scope="module")
def gd(guest: Guest) -> Iterator[GuestGuardd]:
    """The guest's installed guardd, ready; the per-plug latencies are written at the end."""
    driver = GuestGuardd(guest)
    driver.wait_active()
    yield driver
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    (ARTEFACTS / "e2e-plug-times.json").write_text(
        json.dumps([asdict(p) for p in driver.plugs], indent=2) + "\n"
    )
