"""DeviceGate's logic with a real Store, AuditLog and Matcher, and a recording fake switch.

The sysfs side is faked (a dict of DeviceFacts and a recorder of switch writes): what is
checked here is which device is switched on or off, what the store remembers across a
restart, and what the audit trail says.
"""

from __future__ import annotations

import errno
import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from guardd.audit import AuditLog
from guardd.devices.gate import DeviceGate
from guardd.devices.sysfs import read_facts
from guardd.devices.udev_source import BlockEvent, UsbEvent
from guardd.store.db import HeldVolume, Store
from rules import DeviceFacts, Matcher, UsbInterface, Verdict, parse_rules

STORAGE = (UsbInterface(0x08, 0x06, 0x50),)
KEYBOARD = (UsbInterface(0x03, 0x01, 0x01),)
NOW = 1_700_000_000.0
LUKS_UUID = "0b5e7c2a-6f61-4c0e-9d4e-1a2b3c4d5e6f"


def rules(*serials: str, require_encryption: bool = True, label: str = "Office stick") -> Matcher:
    text = f"[policy]\nrequire_encryption = {str(require_encryption).lower()}\n"
    for serial in serials:
        text += (
            f'\n[[drive]]\nserial = "{serial}"\nvendor_id = "46f4"\n'
            f'product_id = "0001"\nlabel = "{label} {serial}"\n'
        )
    return Matcher(parse_rules(text, "t.toml"))


def stick(sys_path: str, serial: str | None) -> DeviceFacts:
    return DeviceFacts(
        id=os.path.basename(sys_path),
        vendor_id="46f4",
        product_id="0001",
        serial=serial,
        device_class=0,
        interfaces=STORAGE,
        manufacturer="QEMU",
        product="QEMU USB HARDDRIVE",
    )


def keyboard(sys_path: str) -> DeviceFacts:
    return DeviceFacts(os.path.basename(sys_path), "046d", "c31c", None, 0, KEYBOARD)


def gone(sys_path: str) -> DeviceFacts:
    """What read_facts gives for a device whose sysfs folder has disappeared."""
    return DeviceFacts(os.path.basename(sys_path), "", "", None, None, None)


def block(
    action: str,
    device: str,
    name: str = "sda",
    fs_type: str = "vfat",
    fs_uuid: str = "1234-ABCD",
    has_partition_table: bool = False,
) -> BlockEvent:
    """A udev block event for a disk (or partition, 'sda1') of the USB device at `device`."""
    device_id = os.path.basename(device)
    disk = f"{device}/{device_id}:1.0/host2/target2:0:0/2:0:0:0/block/{name.rstrip('0123456789')}"
    path = disk if name == os.path.basename(disk) else f"{disk}/{name}"
    return BlockEvent(action, path, name, fs_type, fs_uuid, has_partition_table)


class FakeAuthorizer:
    """Records every switch; raises OSError for the paths in `failing`."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, bool | None]] = []
        self.failing: set[str] = set()
        self.errno = errno.EIO

    def set_authorized(self, sys_path: str, allowed: bool) -> None:
        if sys_path in self.failing:
            raise OSError(self.errno, os.strerror(self.errno))
        self.calls.append(("authorized", sys_path, allowed))

    def set_default_deny(self, sys_path: str) -> None:
        if sys_path in self.failing:
            raise OSError(errno.EACCES, "Permission denied")
        self.calls.append(("default_deny", sys_path, None))

    def switches(self, sys_path: str) -> list[bool | None]:
        return [allowed for kind, path, allowed in self.calls if path == sys_path]


@dataclass
class FakeSysfs:
    """The facts each device reports; a path not listed reads as a device that is gone."""

    facts: dict[str, DeviceFacts] = field(default_factory=dict)
    reads: list[str] = field(default_factory=list)

    def __call__(self, sys_path: str) -> DeviceFacts:
        self.reads.append(sys_path)
        return self.facts.get(sys_path) or gone(sys_path)


@dataclass
class World:
    """A store, an audit log and a fake sysfs whose device folders really exist in tmp_path
    (the gate checks a device is still there before judging it for a volume)."""

    store: Store
    audit: AuditLog
    sysfs: FakeSysfs
    authorizer: FakeAuthorizer
    matcher: Matcher
    root: str  # the controller, .../usb2

    @property
    def dev(self) -> str:
        return self.root + "/2-1"  # an enrolled stick (SCHOOL-1)

    @property
    def dev2(self) -> str:
        return self.root + "/2-2"  # a stick nobody enrolled (STRANGER)

    @property
    def kbd(self) -> str:
        return self.root + "/2-3"  # a keyboard

    def plug(self, sys_path: str, facts: DeviceFacts) -> None:
        os.makedirs(sys_path, exist_ok=True)
        self.sysfs.facts[sys_path] = facts

    def unplug(self, sys_path: str) -> None:
        os.rmdir(sys_path)
        del self.sysfs.facts[sys_path]

    def gate(self, matcher: Matcher | None = None) -> DeviceGate:
        return DeviceGate(
            matcher or self.matcher,
            self.authorizer,
            self.audit,
            self.store,
            clock=lambda: NOW,
            read=self.sysfs,
        )

    def events(self) -> list[tuple[str, dict[str, Any]]]:
        lines = self.audit.path.read_text(encoding="utf-8").splitlines()
        return [(r["event"], r["data"]) for r in map(json.loads, lines)]

    def event_names(self) -> list[str]:
        return [name for name, _ in self.events()]


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    store = Store.open(tmp_path / "state" / "guardd.db")
    audit = AuditLog.open(tmp_path / "state" / "audit.jsonl")
    root = tmp_path / "sys" / "devices" / "pci0000:00" / "0000:00:14.0" / "usb2"
    root.mkdir(parents=True)
    made = World(store, audit, FakeSysfs(), FakeAuthorizer(), rules("SCHOOL-1"), str(root))
    made.plug(made.dev, stick(made.dev, "SCHOOL-1"))
    made.plug(made.dev2, stick(made.dev2, "STRANGER"))
    made.plug(made.kbd, keyboard(made.kbd))
    yield made
    audit.close()
    store.close()


def test_the_fake_reader_matches_read_facts_for_a_gone_device(tmp_path: Path) -> None:
    assert gone(str(tmp_path / "usb2" / "2-1")) == read_facts(str(tmp_path / "usb2" / "2-1"))


# --- plugging ----------------------------------------------------------------------------------


def test_root_hub_is_made_default_deny_and_not_judged(world: World) -> None:
    gate = world.gate()
    assert gate.usb_added(world.root, cause="startup") is None
    assert world.authorizer.calls == [("default_deny", world.root, None)]
    assert world.sysfs.reads == []
    assert gate.devices() == []
    assert world.store.devices() == []
    assert world.events() == [("controller.default_deny", {"controller": "usb2"})]


def test_unknown_stick_is_switched_off(world: World) -> None:
    gate = world.gate()
    state = gate.usb_added(world.dev2, cause="plugged")
    assert state is not None
    assert world.authorizer.calls == [("authorized", world.dev2, False)]
    assert state.decision.rule == "default:not-enrolled"
    assert state.since == NOW
    [view] = world.store.devices()
    assert (view["id"], view["verdict"], view["serial"]) == ("2-2", "blocked", "STRANGER")
    [(event, data)] = world.events()
    assert event == "device.decision"
    assert data["cause"] == "plugged"
    assert data["serial"] == "STRANGER"
    assert data["verdict"] == "blocked"


def test_enrolled_stick_is_switched_on(world: World) -> None:
    gate = world.gate()
    state = gate.usb_added(world.dev, cause="plugged")
    assert state is not None
    assert world.authorizer.calls == [("authorized", world.dev, True)]
    assert state.decision.verdict is Verdict.ALLOWED
    assert state.decision.label == "Office stick SCHOOL-1"
    assert world.store.devices()[0]["verdict"] == "allowed"
    assert gate.find("2-1") is state
    assert gate.find("9-9") is None


def test_keyboard_is_switched_on(world: World) -> None:
    state = world.gate().usb_added(world.kbd, cause="plugged")
    assert state is not None
    assert state.kind.value == "hid"
    assert world.authorizer.calls == [("authorized", world.kbd, True)]


def plain_volume_blocked(world: World) -> DeviceGate:
    """An enrolled stick plugged, then its unencrypted vfat volume seen."""
    gate = world.gate()
    gate.usb_added(world.dev, cause="plugged")
    gate.block_event(block("add", world.dev, "sda", "vfat"))
    return gate


def test_enrolled_stick_with_a_plain_volume_is_switched_off_and_held(world: World) -> None:
    gate = plain_volume_blocked(world)
    assert world.authorizer.switches(world.dev) == [True, False]
    [state] = gate.devices()
    assert state.decision.verdict is Verdict.BLOCKED
    assert state.decision.rule == "policy:require_encryption"
    assert state.device_decision.verdict is Verdict.ALLOWED
    assert world.store.held_volumes(world.dev, state.identity) == [
        HeldVolume("sda", "vfat", "1234-ABCD", False)
    ]
    [view] = world.store.devices()
    assert view["verdict"] == "blocked"
    assert view["volumes"] == [
        {"name": "sda", "fs_type": "vfat", "verdict": "blocked", "reason": state.decision.reason}
    ]
    events = world.events()
    assert [name for name, _ in events] == [
        "device.decision",
        "volume.decision",
        "device.decision",
    ]
    assert events[1][1]["volume_verdict"] == "blocked"
    assert events[2][1]["cause"] == "volume-seen"


def test_encrypted_volume_keeps_the_stick_on(world: World) -> None:
    gate = world.gate()
    gate.usb_added(world.dev, cause="plugged")
    gate.block_event(block("add", world.dev, "sda", "crypto_LUKS", LUKS_UUID))
    assert world.authorizer.switches(world.dev) == [True]
    [state] = gate.devices()
    assert state.decision.verdict is Verdict.ALLOWED
    assert list(state.volumes) == ["sda"]
    assert world.store.held_volumes(world.dev, state.identity) == []


def test_held_volume_keeps_the_stick_off_after_a_restart(world: World) -> None:
    first = plain_volume_blocked(world)
    identity = first.devices()[0].identity
    restarted = FakeAuthorizer()
    world.authorizer = restarted
    second = world.gate()  # a new gate on the same store: the daemon restarted
    state = second.usb_added(world.dev, cause="startup")
    assert state is not None
    # Never switched on, not even briefly.
    assert restarted.calls == [("authorized", world.dev, False)]
    assert state.decision.rule == "policy:require_encryption"
    assert list(state.volumes) == ["sda"]
    assert world.store.held_volumes(world.dev, identity) == [
        HeldVolume("sda", "vfat", "1234-ABCD", False)
    ]


def test_held_volume_is_not_applied_to_another_stick_in_the_same_port(world: World) -> None:
    plain_volume_blocked(world)
    world.authorizer = FakeAuthorizer()
    world.sysfs.facts[world.dev] = stick(world.dev, "SCHOOL-2")
    gate = world.gate(rules("SCHOOL-1", "SCHOOL-2"))
    state = gate.usb_added(world.dev, cause="startup")
    assert state is not None
    assert world.authorizer.calls == [("authorized", world.dev, True)]
    assert state.volumes == {}


def test_held_volume_is_released_when_the_rules_stop_requiring_encryption(world: World) -> None:
    plain_volume_blocked(world)
    world.authorizer = FakeAuthorizer()
    gate = world.gate()
    state = gate.usb_added(world.dev, cause="startup")
    assert state is not None
    assert gate.reload(rules("SCHOOL-1", require_encryption=False)) == 1
    assert world.authorizer.switches(world.dev) == [False, True]
    assert state.decision.verdict is Verdict.ALLOWED
    assert world.store.held_volumes(world.dev, state.identity) == []
    assert world.store.devices()[0]["verdict"] == "allowed"
    assert world.events()[-1][1]["cause"] == "rules-reloaded"
    # And a later restart no longer holds it.
    world.authorizer = FakeAuthorizer()
    world.gate(rules("SCHOOL-1", require_encryption=False)).usb_added(world.dev, cause="startup")
    assert world.authorizer.calls == [("authorized", world.dev, True)]


def test_start_judges_present_devices_and_forgets_absent_ones(world: World) -> None:
    world.store.put_device(world.root + "/2-9", "x", {"id": "2-9"}, 1.0)
    world.store.hold_volumes(world.root + "/2-9", "x", [HeldVolume("sdz", "vfat", "", False)])
    gate = world.gate()
    gate.start([world.root, world.dev, world.kbd], [block("add", world.dev, "sda", "vfat")])
    assert world.authorizer.calls == [
        ("default_deny", world.root, None),
        ("authorized", world.dev, True),
        ("authorized", world.kbd, True),
        ("authorized", world.dev, False),
    ]
    assert [d["id"] for d in world.store.devices()] == ["2-1", "2-3"]
    assert world.store.held_volumes(world.root + "/2-9", "x") == []


# --- block events ------------------------------------------------------------------------------


def test_block_event_under_an_unknown_device_judges_that_device_first(world: World) -> None:
    gate = world.gate()
    gate.block_event(block("add", world.dev, "sda", "vfat"))
    assert world.sysfs.reads == [world.dev]
    assert world.authorizer.switches(world.dev) == [True, False]
    [state] = gate.devices()
    assert state.sys_path == world.dev
    assert list(state.volumes) == ["sda"]
    assert world.events()[0][1]["cause"] == "volume-seen"


def test_block_event_behind_a_hub_belongs_to_the_deepest_device(world: World) -> None:
    behind_hub = world.dev + "/2-1.4"
    world.plug(behind_hub, stick(behind_hub, "SCHOOL-1"))
    gate = world.gate()
    gate.block_event(block("add", behind_hub, "sdb1", "vfat"))
    assert world.sysfs.reads == [behind_hub]
    [state] = gate.devices()
    assert state.facts.id == "2-1.4"
    assert list(state.volumes) == ["sdb1"]
    assert world.authorizer.switches(world.dev) == []


def test_block_event_outside_usb_is_ignored(world: World) -> None:
    gate = world.gate()
    sata = "/sys/devices/pci0000:00/0000:00:17.0/ata1/host0/target0:0:0/0:0:0:0/block/sda"
    gate.block_event(BlockEvent("add", sata, "sda", "ext4", "u", False))
    assert world.sysfs.reads == []
    assert world.authorizer.calls == []
    assert gate.devices() == []


def test_volume_of_a_blocked_stick_switches_it_off_again(world: World) -> None:
    gate = world.gate()
    gate.usb_added(world.dev2, cause="plugged")
    gate.block_event(block("add", world.dev2, "sda", "vfat"))
    assert world.authorizer.switches(world.dev2) == [False, False]
    [state] = gate.devices()
    assert state.volumes == {}
    assert "volume.decision" not in world.event_names()


def test_removing_an_allowed_volume_forgets_it(world: World) -> None:
    gate = world.gate()
    gate.usb_added(world.dev, cause="plugged")
    gate.block_event(block("add", world.dev, "sda", "", "", has_partition_table=True))
    gate.block_event(block("add", world.dev, "sda1", "crypto_LUKS", LUKS_UUID))
    [state] = gate.devices()
    assert list(state.volumes) == ["sda", "sda1"]
    gate.block_event(block("remove", world.dev, "sda1", "", ""))
    assert list(state.volumes) == ["sda"]
    assert state.decision.verdict is Verdict.ALLOWED
    assert world.authorizer.switches(world.dev) == [True]


def test_removing_a_blocking_volume_keeps_it(world: World) -> None:
    gate = plain_volume_blocked(world)
    gate.block_event(block("remove", world.dev, "sda", "", ""))
    [state] = gate.devices()
    assert list(state.volumes) == ["sda"]  # it is why the stick is off
    assert state.decision.verdict is Verdict.BLOCKED
    assert world.authorizer.switches(world.dev) == [True, False]
    assert world.store.held_volumes(world.dev, state.identity) != []


# --- removal and resync ----------------------------------------------------------------------


def test_usb_removed_records_the_serial_seen_when_plugged(world: World) -> None:
    gate = plain_volume_blocked(world)
    identity = gate.devices()[0].identity
    world.unplug(world.dev)  # the device is gone: nothing can be read from it now
    reads = len(world.sysfs.reads)
    gate.usb_removed(world.dev)
    assert len(world.sysfs.reads) == reads
    assert gate.devices() == []
    assert world.store.devices() == []
    assert world.store.held_volumes(world.dev, identity) == []
    event, data = world.events()[-1]
    assert event == "device.removed"
    assert (data["device"], data["serial"], data["verdict"]) == ("2-1", "SCHOOL-1", "blocked")


def test_removing_an_unknown_device_records_nothing(world: World) -> None:
    gate = world.gate()
    gate.usb_removed(world.dev)
    assert world.events() == []
    assert world.authorizer.calls == []


def test_usb_events(world: World) -> None:
    gate = world.gate()
    gate.usb_event(UsbEvent("add", world.dev, time.perf_counter()))
    gate.usb_event(UsbEvent("bind", world.dev2, time.perf_counter()))
    assert [d.sys_path for d in gate.devices()] == [world.dev]
    assert gate.enforce_latency.count == 1
    gate.usb_event(UsbEvent("remove", world.dev))
    assert gate.devices() == []
    assert world.event_names()[-1] == "device.removed"


def test_resync_removes_gone_devices_and_judges_new_ones(world: World) -> None:
    gate = world.gate()
    gate.usb_added(world.dev, cause="plugged")
    gate.usb_added(world.dev2, cause="plugged")
    behind_hub = world.kbd + "/2-3.1"
    world.plug(behind_hub, stick(behind_hub, "SCHOOL-1"))
    world.sysfs.reads.clear()
    world.authorizer.calls.clear()
    present = [behind_hub, world.dev2, world.kbd, world.root]
    gate.resync(present, [block("add", behind_hub, "sdc", "vfat")])
    # Parents first; the device already known (2-2) is not read again.
    assert world.sysfs.reads == [world.kbd, behind_hub]
    assert [d.facts.id for d in gate.devices()] == ["2-2", "2-3", "2-3.1"]
    assert world.authorizer.calls == [
        ("default_deny", world.root, None),
        ("authorized", world.kbd, True),
        ("authorized", behind_hub, True),
        ("authorized", behind_hub, False),  # its plain volume
    ]
    removed = [data for name, data in world.events() if name == "device.removed"]
    assert [(d["device"], d["serial"]) for d in removed] == [("2-1", "SCHOOL-1")]
    causes = [d.get("cause") for name, d in world.events() if name == "device.decision"]
    assert causes[-3:] == ["resync", "resync", "volume-seen"]


def test_block_remove_after_the_device_went_away_leaves_no_ghost(world: World) -> None:
    gate = world.gate()
    gate.usb_added(world.dev, cause="plugged")
    gate.block_event(block("add", world.dev, "sda", "crypto_LUKS", LUKS_UUID))
    world.unplug(world.dev)
    gate.usb_removed(world.dev)  # the kernel's uevent comes first
    events = len(world.events())
    reads = len(world.sysfs.reads)
    gate.block_event(block("remove", world.dev, "sda", "", ""))  # then udev's
    assert gate.devices() == []
    assert world.store.devices() == []
    assert world.events()[events:] == []
    assert len(world.sysfs.reads) == reads
    assert world.authorizer.switches(world.dev) == [True]


def test_block_add_for_a_device_that_is_gone_is_ignored(world: World) -> None:
    gate = world.gate()
    world.unplug(world.dev)  # udev's late event names a device no longer in sysfs
    gate.block_event(block("change", world.dev, "sda", "vfat"))
    assert world.sysfs.reads == []
    assert world.authorizer.calls == []
    assert gate.devices() == []
    assert world.events() == []


def test_block_remove_under_an_unknown_device_judges_nothing(world: World) -> None:
    gate = world.gate()
    gate.block_event(block("remove", world.dev, "sda", "", ""))
    assert world.sysfs.reads == []
    assert gate.devices() == []


# --- failures ----------------------------------------------------------------------------------


def test_switch_failure_is_audited_and_does_not_raise(world: World) -> None:
    world.authorizer.failing.add(world.dev2)
    gate = world.gate()
    state = gate.usb_added(world.dev2, cause="plugged")
    assert state is not None
    assert gate.devices() == [state]  # still known, still shown as blocked
    [failed] = [data for name, data in world.events() if name == "device.enforce_failed"]
    assert failed["wanted"] is False
    assert failed["error"] == "Input/output error"
    assert failed["device"] == "2-2"
    assert world.event_names() == ["device.enforce_failed", "device.decision"]


@pytest.mark.parametrize("code", [errno.ENOENT, errno.ENODEV])
def test_device_gone_before_switch_is_recorded_as_vanished(world: World, code: int) -> None:
    world.authorizer.failing.add(world.dev2)
    world.authorizer.errno = code
    world.gate().usb_added(world.dev2, cause="plugged")
    assert world.event_names() == ["device.vanished", "device.decision"]


def test_default_deny_failure_is_audited_and_does_not_raise(world: World) -> None:
    world.authorizer.failing.add(world.root)
    assert world.gate().usb_added(world.root, cause="startup") is None
    assert world.events() == [
        ("controller.default_deny_failed", {"controller": "usb2", "error": "Permission denied"})
    ]


# --- reload ------------------------------------------------------------------------------------


def test_reload_counts_and_enforces_changed_verdicts(world: World) -> None:
    gate = world.gate()
    for path in (world.dev, world.dev2, world.kbd):
        gate.usb_added(path, cause="plugged")
    world.authorizer.calls.clear()
    # SCHOOL-1 is withdrawn, STRANGER is enrolled; the keyboard is not affected.
    assert gate.reload(rules("STRANGER")) == 2
    assert sorted(world.authorizer.calls) == [
        ("authorized", world.dev, False),
        ("authorized", world.dev2, True),
    ]
    verdicts = {d.facts.id: d.decision.verdict for d in gate.devices()}
    assert verdicts == {"2-1": Verdict.BLOCKED, "2-2": Verdict.ALLOWED, "2-3": Verdict.ALLOWED}
    stored = {v["id"]: v["verdict"] for v in world.store.devices()}
    assert stored == {"2-1": "blocked", "2-2": "allowed", "2-3": "allowed"}
    reloaded = [d for name, d in world.events() if d.get("cause") == "rules-reloaded"]
    assert sorted(str(d["device"]) for d in reloaded) == ["2-1", "2-2"]


def test_reload_with_the_same_rules_changes_nothing(world: World) -> None:
    gate = plain_volume_blocked(world)
    gate.usb_added(world.dev2, cause="plugged")
    world.authorizer.calls.clear()
    events = len(world.events())
    assert gate.reload(rules("SCHOOL-1")) == 0
    assert world.authorizer.calls == []
    assert len(world.events()) == events


def test_reload_that_blocks_a_volume_switches_the_stick_off(world: World) -> None:
    gate = world.gate(rules("SCHOOL-1", require_encryption=False))
    gate.usb_added(world.dev, cause="plugged")
    gate.block_event(block("add", world.dev, "sda", "vfat"))
    assert world.authorizer.switches(world.dev) == [True]
    assert gate.reload(rules("SCHOOL-1")) == 1
    assert world.authorizer.switches(world.dev) == [True, False]
    state = gate.devices()[0]
    assert world.store.held_volumes(world.dev, state.identity) == [
        HeldVolume("sda", "vfat", "1234-ABCD", False)
    ]


def test_reload_that_only_relabels_a_drive_changes_no_verdict(world: World) -> None:
    gate = world.gate()
    gate.usb_added(world.dev, cause="plugged")
    assert gate.reload(rules("SCHOOL-1", label="Renamed stick")) == 0
