"""Scan before exposing, end to end: a real guardd, real clamd, real loop-mounted filesystems.

An enrolled LUKS stick comes in through umockdev; its unlocked mapping is a real loop device
with a real ext4 filesystem, mounted as the desktop would; guardd holds it read-only, scans it
with clamd and exposes it, or keeps it held and switches the stick off.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from conftest import ENROLLED, GuarddFactory
from exposure_support import (
    CLEAN_FILES,
    Drive,
    audit_events,
    clamd,
    make_medium,
    media,
    ready_drive,
    start,
    writable,
)

from guardd.media.blockdev import is_read_only
from sim.clamd import EICAR, ClamdProcess
from sim.daemon import wait_for
from sim.media import LoopMedium
from sim.usb import UsbTestbed, stick

BIN = Path(sys.executable).parent


def test_clean_drive_is_held_then_ready(
    testbed: UsbTestbed,
    guardd: GuarddFactory,
    clamd: ClamdProcess,
    world: Path,
    media: list[LoopMedium],
) -> None:
    daemon = start(guardd, clamd)
    drive = Drive(testbed, daemon, make_medium(world, media, CLEAN_FILES))
    drive.unlock()
    wait_for(lambda: is_read_only(drive.medium.devnode), 10, lambda: "never held read-only")
    held = daemon.wait_verdict("2-1", "allowed")
    assert "will be scanned" in str(held["reason"])
    folder = drive.open(world)
    ready = daemon.wait_verdict("2-1", "ready", timeout=30)
    assert ready["reason"] == "ready: scanned for viruses, clean (2 files)"
    assert ready["scan"]["files_scanned"] == 2
    assert not is_read_only(drive.medium.devnode)
    assert writable(folder)
    records = audit_events(daemon)
    events = [e["event"] for e in records]
    assert (
        events.index("media.held")
        < events.index("media.scan_started")
        < events.index("media.ready")
    )
    checked = next(e for e in records if e["event"] == "clamd.checked")
    assert checked["data"]["ok"] is True  # type: ignore[index]


def test_infected_drive_stays_held_is_switched_off_and_reported(
    testbed: UsbTestbed,
    guardd: GuarddFactory,
    clamd: ClamdProcess,
    world: Path,
    media: list[LoopMedium],
) -> None:
    daemon = start(guardd, clamd)
    files = {**CLEAN_FILES, "a/b/c/d/e/f/g/h/i/j/eicar.com": EICAR}
    drive = Drive(testbed, daemon, make_medium(world, media, files))
    drive.unlock()
    folder = drive.open(world)
    device = daemon.wait_verdict("2-1", "infected", timeout=30)
    assert "a/b/c/d/e/f/g/h/i/j/eicar.com" in str(device["reason"])
    assert "Eicar-Test-Signature" in str(device["reason"])
    wait_for(lambda: testbed.read(drive.path, "authorized").strip() == "0", 10, lambda: "not off")
    assert not writable(folder)
    assert (folder / "a/b/c/d/e/f/g/h/i/j/eicar.com").read_bytes() == EICAR  # never deleted
    wait_for(
        lambda: any(e["event"] == "incident.reported" for e in audit_events(daemon)),
        10,
        lambda: "incident never reported",
    )
    out = subprocess.run(
        [str(BIN / "guard-admin"), "--config", str(daemon.config), "incidents", "--json"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    [incident] = json.loads(out.stdout)
    assert incident["device"]["serial"] == "SCHOOL-000124"
    assert incident["infected"][0]["path"] == "a/b/c/d/e/f/g/h/i/j/eicar.com"
    assert incident["action"] == "held read-only and switched off"
    infected = [e for e in audit_events(daemon) if e["event"] == "media.infected"]
    assert infected
    # A restart does not let it back in.
    daemon.stop()
    daemon.start()
    assert "Eicar" in str(daemon.wait_verdict("2-1", "infected")["reason"])
    assert testbed.read(drive.path, "authorized").strip() == "0"


def test_clamd_down_holds_then_retries(
    testbed: UsbTestbed,
    guardd: GuarddFactory,
    clamd: ClamdProcess,
    world: Path,
    media: list[LoopMedium],
) -> None:
    clamd.stop()
    daemon = start(guardd, clamd)
    drive = Drive(testbed, daemon, make_medium(world, media, CLEAN_FILES))
    drive.unlock()
    folder = drive.open(world)
    failed = daemon.wait_verdict("2-1", "scan-failed", timeout=30)
    assert str(failed["reason"]).startswith("cannot scan right now")
    assert str(failed["reason"]).endswith("guardd will try again by itself")
    checked = next(e for e in audit_events(daemon) if e["event"] == "clamd.checked")
    assert checked["data"]["ok"] is False  # type: ignore[index]
    assert not writable(folder)
    clamd.start()
    daemon.wait_verdict("2-1", "ready", timeout=60)
    assert writable(folder)


def test_progress_is_shown_while_scanning(
    testbed: UsbTestbed,
    guardd: GuarddFactory,
    clamd: ClamdProcess,
    world: Path,
    media: list[LoopMedium],
) -> None:
    daemon = start(guardd, clamd)
    files: dict[str | bytes, bytes] = {
        f"class{i % 30}/pupil{i}.txt": f"essay {i}\n".encode() * 20 for i in range(3000)
    }
    drive = Drive(testbed, daemon, make_medium(world, media, files))
    drive.unlock()
    drive.open(world)
    scanning = daemon.wait_verdict("2-1", "scanning", timeout=30)
    assert str(scanning["reason"]).startswith("scanning:")
    # While it scans, guardd still answers and still judges other devices at once.
    stranger = testbed.plug(stick("NOT-OURS"), port="2")
    assert "not issued" in str(daemon.wait_verdict("2-2", "blocked", timeout=2)["reason"])
    assert testbed.read(stranger, "authorized").strip() == "0"
    now = daemon.device("2-1") or {}
    assert now["verdict"] == "scanning"
    # Progress is shown once the files are counted ("scanning: counting the files" before).
    progress = now.get("progress") or {"files_done": 0, "files_total": 3000}
    assert progress["files_total"] == 3000
    assert 0 <= progress["files_done"] <= progress["files_total"]
    ready = daemon.wait_verdict("2-1", "ready", timeout=120)
    assert ready["scan"]["files_scanned"] == 3000


def test_file_written_after_ready_is_scanned_when_closed(
    testbed: UsbTestbed,
    guardd: GuarddFactory,
    clamd: ClamdProcess,
    world: Path,
    media: list[LoopMedium],
) -> None:
    daemon = start(guardd, clamd)
    _drive, folder = ready_drive(testbed, daemon, world, media)
    (folder / "downloaded.txt").write_bytes(b"fine\n")
    with (folder / "homework.com").open("wb") as f:
        f.write(EICAR)
    device = daemon.wait_verdict("2-1", "infected", timeout=30)
    assert "homework.com" in str(device["reason"])
    assert not writable(folder)
    assert os.path.exists(folder / "homework.com")


__all__ = ["clamd", "media"]  # fixtures used by name


def test_folder_copied_onto_a_ready_drive_is_scanned(
    testbed: UsbTestbed,
    guardd: GuarddFactory,
    clamd: ClamdProcess,
    world: Path,
    media: list[LoopMedium],
) -> None:
    daemon = start(guardd, clamd)
    _drive, folder = ready_drive(testbed, daemon, world, media)
    source = world / "download"
    (source / "deep" / "er").mkdir(parents=True)
    (source / "deep" / "er" / "game.com").write_bytes(EICAR)
    subprocess.run(["cp", "-r", str(source), str(folder / "copied")], check=True, timeout=60)
    device = daemon.wait_verdict("2-1", "infected", timeout=30)
    assert "copied/deep/er/game.com" in str(device["reason"])


def test_name_starting_with_two_dots_is_scanned(
    testbed: UsbTestbed,
    guardd: GuarddFactory,
    clamd: ClamdProcess,
    world: Path,
    media: list[LoopMedium],
) -> None:
    daemon = start(guardd, clamd)
    _drive, folder = ready_drive(testbed, daemon, world, media)
    (folder / "..homework.com").write_bytes(EICAR)
    assert "..homework.com" in str(daemon.wait_verdict("2-1", "infected", timeout=30)["reason"])


def test_ready_drive_ejects_normally(
    testbed: UsbTestbed,
    guardd: GuarddFactory,
    clamd: ClamdProcess,
    world: Path,
    media: list[LoopMedium],
) -> None:
    daemon = start(guardd, clamd)
    drive, folder = ready_drive(testbed, daemon, world, media)
    # guardd keeps nothing open on it: a plain (not lazy) unmount works, as the desktop's eject.
    out = subprocess.run(
        ["umount", str(folder)], capture_output=True, text=True, check=False, timeout=60
    )
    assert out.returncode == 0, out.stderr
    drive.medium.mountpoint = None
    assert daemon.wait_verdict("2-1", "ready")["verdict"] == "ready"


def test_hold_that_cannot_be_made_switches_the_drive_off(
    testbed: UsbTestbed,
    guardd: GuarddFactory,
    clamd: ClamdProcess,
    world: Path,
    media: list[LoopMedium],
) -> None:
    rules = ENROLLED.replace("[policy]\n", '[policy]\non_infected = "read-only"\n', 1)
    daemon = start(guardd, clamd, rules)
    drive, folder = ready_drive(testbed, daemon, world, media)
    with (folder / "essay.odt").open("wb") as busy:  # a file open for writing: remount ro fails
        busy.write(b"draft")
        busy.flush()
        (folder / "virus.com").write_bytes(EICAR)
        device = daemon.wait_verdict("2-1", "blocked", timeout=30)
    assert "could not be made read-only" in str(device["reason"])
    assert testbed.read(drive.path, "authorized").strip() == "0"
    assert any(e["event"] == "media.hold_failed" for e in audit_events(daemon))
