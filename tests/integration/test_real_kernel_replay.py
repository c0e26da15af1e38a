"""Replay what a real kernel sent for three hot-plugged sticks; guardd must judge them right."""

from __future__ import annotations

import json

from conftest import GuarddFactory

from sim.daemon import RULES_HEADER, drive_toml
from sim.replay import recorded_events, replay
from sim.usb import UsbTestbed

RULES = (
    RULES_HEADER
    + drive_toml("SCHOOL-000123", "ext4 stick")
    + drive_toml("SCHOOL-000124", "LUKS stick")
)


def test_recording_has_the_shape_we_simulate() -> None:
    events = recorded_events()
    sticks = [e for e in events if e["devtype"] == "usb_device" and e["action"] == "add"]
    assert {e["props"]["ID_SERIAL_SHORT"] for e in sticks} == {
        "SCHOOL-000123",
        "SCHOOL-000124",
        "SCHOOL-000125",
    }
    removes = [e for e in events if e["devtype"] == "usb_device" and e["action"] == "remove"]
    assert removes
    assert all("ID_SERIAL_SHORT" not in e["props"] for e in removes)


def test_replayed_real_kernel_events(testbed: UsbTestbed, guardd: GuarddFactory) -> None:
    daemon = guardd(RULES)
    for event in replay(testbed, recorded_events()):
        if event["subsystem"] == "block" and event["action"] == "add":
            # Give the daemon the moment a real machine has between the events.
            stick = event["sys_path"].split("/")[6]
            daemon.wait_verdict(stick, "allowed" if stick == "2-2" else "blocked")
    # ext4 stick: enrolled but not encrypted -> switched off when its volume appeared.
    # LUKS stick: admitted. vfat stick: never enrolled -> off, even after its volume showed.
    # The recording ends with 2-1's disk and interface gone (as after a de-authorisation) and
    # 2-3 unplugged: remove events carry no serial, so guardd uses what it recorded.
    daemon.wait_gone("2-3")
    assert "not encrypted" in daemon.wait_verdict("2-1", "blocked")["reason"]
    assert testbed.read("/sys/devices/pci0000:00/0000:00:04.0/usb2/2-1", "authorized") == "0"
    device = daemon.wait_verdict("2-2", "allowed")
    assert device["volumes"][0]["fs_type"] == "crypto_LUKS"
    assert testbed.read("/sys/devices/pci0000:00/0000:00:04.0/usb2/2-2", "authorized") == "1"
    records = [json.loads(x) for x in (daemon.state_dir / "audit.jsonl").read_text().splitlines()]
    decisions = {
        (r["data"]["serial"], r["data"]["verdict"])
        for r in records
        if r["event"] == "device.decision"
    }
    assert ("SCHOOL-000123", "blocked") in decisions
    assert ("SCHOOL-000125", "blocked") in decisions
    removed = {r["data"]["serial"] for r in records if r["event"] == "device.removed"}
    assert removed == {"SCHOOL-000125"}
