"""What the scan-before-exposing tests share: a real clamd, loop media, an enrolled LUKS drive
whose unlocked mapping is a real filesystem, and readers of the audit trail."""

from __future__ import annotations

import errno
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import ENROLLED, GuarddFactory

from guardd.media.blockdev import is_read_only
from sim.clamd import ClamdProcess
from sim.daemon import GuarddProcess, wait_for
from sim.media import LoopMedium
from sim.usb import UsbTestbed, stick

CLEAN_FILES: dict[str | bytes, bytes] = {
    "notes/minutes.txt": b"governors meeting\n",
    "report.odt": b"PK\x03\x04" + b"x" * 500,
}


@pytest.fixture
def clamd(world: Path) -> Iterator[ClamdProcess]:
    process = ClamdProcess(world / "clamd")
    process.start()
    yield process
    process.stop()


@pytest.fixture
def media(world: Path) -> Iterator[list[LoopMedium]]:
    made: list[LoopMedium] = []
    yield made
    for medium in made:
        medium.close()


class Drive:
    """An enrolled LUKS stick, plugged, whose unlocked mapping is a real filesystem."""

    def __init__(self, testbed: UsbTestbed, daemon: GuarddProcess, medium: LoopMedium) -> None:
        self.testbed, self.daemon, self.medium = testbed, daemon, medium
        spec = stick("SCHOOL-000124", "crypto_LUKS")
        self.path = testbed.plug(spec, port="1")
        daemon.wait_verdict("2-1", "allowed")
        [self.container] = testbed.add_volumes(self.path, spec)
        wait_for(lambda: bool(self.view().get("volumes")), 10, lambda: "volume never judged")

    def view(self) -> dict[str, object]:
        return self.daemon.device("2-1") or {}

    def unlock(self) -> None:
        """The mapping appears; as on a desktop, it is opened only after udev (and so guardd,
        which holds it read-only at once) has dealt with it."""
        self.testbed.add_mapping(
            "dm-0", self.container, self.medium.devnode, self.medium.numbers, "ext4"
        )
        wait_for(lambda: is_read_only(self.medium.devnode), 10, lambda: "never held read-only")

    def open(self, world: Path) -> Path:
        return self.medium.mount(world / "media" / "Head's stick")


def start(guardd: GuarddFactory, clamd: ClamdProcess, rules: str = ENROLLED) -> GuarddProcess:
    return guardd(rules, clamd_socket=clamd.socket)


def make_medium(
    world: Path, media: list[LoopMedium], files: dict[str | bytes, bytes], **kw: object
) -> LoopMedium:
    medium = LoopMedium.create(world / f"medium{len(media)}.img", files, **kw)  # type: ignore[arg-type]
    media.append(medium)
    return medium


def writable(folder: Path) -> bool:
    """True when a file can be created; False only for EROFS (anything else is a failure)."""
    try:
        (folder / ".guardd-probe").write_bytes(b"x")
    except OSError as e:
        if e.errno != errno.EROFS:
            raise
        return False
    (folder / ".guardd-probe").unlink()
    return True


def audit_events(daemon: GuarddProcess) -> list[dict[str, object]]:
    lines = (daemon.state_dir / "audit.jsonl").read_text().splitlines()
    return [json.loads(x) for x in lines]


def ready_drive(
    testbed: UsbTestbed,
    daemon: GuarddProcess,
    world: Path,
    media: list[LoopMedium],
    files: dict[str | bytes, bytes] = CLEAN_FILES,
) -> tuple[Drive, Path]:
    """An enrolled LUKS stick, unlocked, opened and scanned clean: (drive, its folder)."""
    drive = Drive(testbed, daemon, make_medium(world, media, files))
    drive.unlock()
    folder = drive.open(world)
    daemon.wait_verdict("2-1", "ready", timeout=30)
    return drive, folder
