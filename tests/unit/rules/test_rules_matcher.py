"""Matcher: every branch of decide_device and decide_volume."""

from __future__ import annotations

import time

import pytest

from rules import (
    Decision,
    DeviceFacts,
    Drive,
    Matcher,
    Policy,
    RuleSet,
    UsbInterface,
    Verdict,
    VolumeFacts,
)

ALLOWED, BLOCKED = Verdict.ALLOWED, Verdict.BLOCKED
STICK = ((0x08, 0x06, 0x50),)
KEYBOARD = ((0x03, 0x01, 0x01),)
LUKS_UUID = "0f5e3c1a-8d2b-4c6e-9a7f-1b2c3d4e5f60"


def _drive(
    serial: str, vendor_id: str = "0781", product_id: str = "5581", **extra: object
) -> Drive:
    fields: dict[str, object] = {
        "rule_id": f"drive:{vendor_id}:{product_id}:{serial}",
        "serial": serial,
        "vendor_id": vendor_id,
        "product_id": product_id,
        "label": serial,
    }
    fields.update(extra)
    return Drive(**fields)  # type: ignore[arg-type]


DRIVES = (
    _drive("SCHOOL-1", rule_id="office-1", label="Office stick 1"),
    _drive("SCHOOL-2", volume_uuids=frozenset({LUKS_UUID})),
    _drive("CHEAP", "abcd", "0001", rule_id="cheap-a"),
    _drive("CHEAP", "abcd", "0002", rule_id="cheap-b"),
)


def _matcher(policy: Policy | None = None, drives: tuple[Drive, ...] = DRIVES) -> Matcher:
    return Matcher(RuleSet(policy or Policy(), drives, ("rules.toml",)))


def _facts(
    serial: str | None = "SCHOOL-1",
    vendor_id: str = "0781",
    product_id: str = "5581",
    interfaces: tuple[tuple[int, int, int], ...] | None = STICK,
    device_class: int | None = 0,
) -> DeviceFacts:
    return DeviceFacts(
        id="1-2",
        vendor_id=vendor_id,
        product_id=product_id,
        serial=serial,
        device_class=device_class,
        interfaces=None if interfaces is None else tuple(UsbInterface(*i) for i in interfaces),
    )


def _volume(fs_type: str, fs_uuid: str = "", *, table: bool = False) -> VolumeFacts:
    return VolumeFacts(
        name="sdb1", device_id="1-2", fs_type=fs_type, fs_uuid=fs_uuid, has_partition_table=table
    )


# --- decide_device ---------------------------------------------------------------------------


def test_rules_property() -> None:
    rules = RuleSet(Policy(), DRIVES, ("rules.toml",))
    assert Matcher(rules).rules is rules


@pytest.mark.parametrize("interfaces", [None, ()])
def test_unreadable_descriptors_are_blocked_even_when_enrolled(
    interfaces: tuple[tuple[int, int, int], ...] | None,
) -> None:
    assert _matcher().decide_device(_facts(interfaces=interfaces)) == Decision(
        BLOCKED,
        "default:unknown-device",
        "blocked: could not read what kind of device this is",
    )


@pytest.mark.parametrize(
    ("interfaces", "device_class", "reason"),
    [
        (KEYBOARD, 0, "allowed: keyboard or mouse (not a storage device)"),
        (((0x03, 0x01, 0x02),), 0, "allowed: keyboard or mouse (not a storage device)"),
        (((0x09, 0x00, 0x00),), 0x09, "allowed: USB hub (not a storage device)"),
        (((0x01, 0x01, 0x00), (0x01, 0x02, 0x00)), 0, "allowed: not a storage device"),
    ],
)
def test_non_storage_is_allowed_by_default(
    interfaces: tuple[tuple[int, int, int], ...], device_class: int, reason: str
) -> None:
    facts = _facts(serial=None, interfaces=interfaces, device_class=device_class)
    assert _matcher().decide_device(facts) == Decision(ALLOWED, "default:non-storage", reason)


def test_non_storage_is_blocked_when_the_policy_says_so() -> None:
    matcher = _matcher(Policy(allow_non_storage=False))
    assert matcher.decide_device(_facts(interfaces=KEYBOARD)) == Decision(
        BLOCKED,
        "policy:allow_non_storage",
        "blocked: only school drives may be connected to this machine",
    )
    # Enrolled drives still work under that policy.
    assert matcher.decide_device(_facts()).verdict is ALLOWED


@pytest.mark.parametrize("serial", ["SCHOOL-1", "UNKNOWN", None])
def test_storage_and_keyboard_at_once_is_suspicious(serial: str | None) -> None:
    decision = _matcher().decide_device(_facts(serial=serial, interfaces=STICK + KEYBOARD))
    assert decision.verdict is BLOCKED
    assert decision.suspicious is True
    assert decision.rule == "default:suspicious-composite"
    assert decision.reason.startswith("blocked: suspicious device: it is a storage drive and a")


def test_keyboard_device_class_with_storage_interface_is_suspicious() -> None:
    decision = _matcher().decide_device(_facts(device_class=0x03))
    assert decision.suspicious is True


@pytest.mark.parametrize("serial", [None, ""])
def test_storage_without_serial_is_blocked(serial: str | None) -> None:
    assert _matcher().decide_device(_facts(serial=serial)) == Decision(
        BLOCKED,
        "default:no-serial",
        "blocked: this drive has no readable serial number, so it cannot be a school drive",
    )


def test_enrolled_drive_is_allowed_with_its_label() -> None:
    assert _matcher().decide_device(_facts()) == Decision(
        ALLOWED, "office-1", "allowed: enrolled as 'Office stick 1'", label="Office stick 1"
    )


def test_usb_ids_from_the_device_are_compared_case_insensitively() -> None:
    decision = _matcher().decide_device(_facts("CHEAP", "ABCD", "0002"))
    assert (decision.verdict, decision.rule) == (ALLOWED, "cheap-b")


def test_one_serial_under_several_makes_needs_all_three_to_match() -> None:
    matcher = _matcher()
    assert matcher.decide_device(_facts("CHEAP", "abcd", "0001")).rule == "cheap-a"
    assert matcher.decide_device(_facts("CHEAP", "abcd", "0002")).rule == "cheap-b"
    assert matcher.decide_device(_facts("CHEAP", "abcd", "0003")) == Decision(
        BLOCKED,
        "default:not-enrolled",
        "blocked: this drive was not issued by the school "
        "(its serial number is enrolled for a different make of drive)",
    )


def test_serial_match_is_exact() -> None:
    decision = _matcher().decide_device(_facts("school-1"))
    assert decision.reason == "blocked: this drive was not issued by the school"


def test_unknown_drive_is_blocked() -> None:
    assert _matcher().decide_device(_facts("NOPE")) == Decision(
        BLOCKED, "default:not-enrolled", "blocked: this drive was not issued by the school"
    )


@pytest.mark.parametrize(
    "interfaces", [((0x06, 0x01, 0x01),), ((0x06, 0x01, 0x01), (0xFF, 0xFF, 0x00))]
)
def test_unknown_phone_or_camera_is_blocked(interfaces: tuple[tuple[int, int, int], ...]) -> None:
    assert _matcher().decide_device(_facts("PHONE", interfaces=interfaces)) == Decision(
        BLOCKED,
        "default:not-enrolled",
        "blocked: this phone or camera was not issued by the school",
    )


def test_storage_composite_without_keyboard_is_judged_as_storage() -> None:
    headset = (*STICK, (0x01, 0x01, 0x00), (0x01, 0x02, 0x00))
    matcher = _matcher()
    assert matcher.decide_device(_facts(interfaces=headset)).rule == "office-1"
    assert matcher.decide_device(_facts("NOPE", interfaces=headset)).rule == "default:not-enrolled"


def test_hostile_serials_are_not_echoed() -> None:
    for serial in ("S" * 300, 'a"; rm -rf / \x1b[2J\n', "\x00"):
        decision = _matcher().decide_device(_facts(serial))
        assert decision.reason == "blocked: this drive was not issued by the school"


def test_no_drives_enrolled() -> None:
    decision = _matcher(drives=()).decide_device(_facts())
    assert decision.rule == "default:not-enrolled"


# --- decide_volume ---------------------------------------------------------------------------


def test_volume_of_a_device_that_is_not_enrolled() -> None:
    for facts in (_facts("NOPE"), _facts(None), _facts(interfaces=KEYBOARD, serial="KB")):
        assert _matcher().decide_volume(facts, _volume("crypto_LUKS")) == Decision(
            BLOCKED, "default:not-enrolled", "blocked: this drive was not issued by the school"
        )


def test_volume_of_an_enrolled_serial_on_a_device_that_is_blocked() -> None:
    matcher = _matcher()
    suspicious = matcher.decide_volume(_facts(interfaces=STICK + KEYBOARD), _volume("crypto_LUKS"))
    assert suspicious.suspicious is True
    unknown = matcher.decide_volume(_facts(interfaces=None), _volume("crypto_LUKS"))
    assert unknown.rule == "default:unknown-device"


@pytest.mark.parametrize(
    ("fs_type", "shown"),
    [("crypto_LUKS", "LUKS"), ("BitLocker", "BitLocker")],
)
def test_encrypted_volume_is_allowed(fs_type: str, shown: str) -> None:
    assert _matcher().decide_volume(_facts(), _volume(fs_type, "anything")) == Decision(
        ALLOWED,
        "office-1",
        f"allowed: enrolled as 'Office stick 1', encrypted ({shown})",
        label="Office stick 1",
    )


def test_extra_encrypted_type_is_shown_by_its_raw_name() -> None:
    matcher = _matcher(Policy(encrypted_types=frozenset({"crypto_LUKS", "VeraCrypt"})))
    decision = matcher.decide_volume(_facts(), _volume("VeraCrypt"))
    assert decision.reason == "allowed: enrolled as 'Office stick 1', encrypted (VeraCrypt)"
    assert matcher.decide_volume(_facts(), _volume("BitLocker")).verdict is BLOCKED


@pytest.mark.parametrize("fs_type", ["vfat", "ext4", "exfat", "ntfs", "crypto_luks", "iso9660"])
def test_unencrypted_volume_is_blocked(fs_type: str) -> None:
    assert _matcher().decide_volume(_facts(), _volume(fs_type)) == Decision(
        BLOCKED,
        "policy:require_encryption",
        "blocked: not encrypted (school drives must be encrypted with LUKS or BitLocker)",
        label="Office stick 1",
    )


def test_unrecognised_volume_is_blocked() -> None:
    assert _matcher().decide_volume(_facts(), _volume("")) == Decision(
        BLOCKED,
        "policy:require_encryption",
        "blocked: not encrypted (nothing on this drive could be recognised as LUKS or BitLocker)",
        label="Office stick 1",
    )


def test_partition_table_is_not_a_volume() -> None:
    matcher = _matcher()
    disk = matcher.decide_volume(_facts(), _volume("", table=True))
    assert disk == Decision(
        ALLOWED, "office-1", "allowed: enrolled as 'Office stick 1'", label="Office stick 1"
    )
    # A disk that is both partitioned and a filesystem is judged by its filesystem.
    assert matcher.decide_volume(_facts(), _volume("vfat", table=True)).verdict is BLOCKED


def test_encryption_not_required() -> None:
    matcher = _matcher(Policy(require_encryption=False))
    assert matcher.decide_volume(_facts(), _volume("vfat")) == Decision(
        ALLOWED, "office-1", "allowed: enrolled as 'Office stick 1'", label="Office stick 1"
    )


def test_enrolled_volume_uuid_is_compared_case_insensitively() -> None:
    decision = _matcher().decide_volume(
        _facts("SCHOOL-2"), _volume("crypto_LUKS", LUKS_UUID.upper())
    )
    assert decision.verdict is ALLOWED
    assert decision.reason == "allowed: enrolled as 'SCHOOL-2', encrypted (LUKS)"


def test_other_encrypted_volume_on_a_uuid_pinned_drive_is_blocked() -> None:
    other = "11111111-2222-3333-4444-555555555555"
    for uuid in (other, ""):
        decision = _matcher().decide_volume(_facts("SCHOOL-2"), _volume("crypto_LUKS", uuid))
        assert decision == Decision(
            BLOCKED,
            "drive:0781:5581:SCHOOL-2",
            "blocked: this drive's encrypted volume is not the one IT enrolled",
            label="SCHOOL-2",
        )


def test_decision_allowed_property() -> None:
    assert _matcher().decide_device(_facts()).allowed is True
    assert _matcher().decide_device(_facts("NOPE")).allowed is False


# --- scale ---------------------------------------------------------------------------------


def test_many_drives_are_decided_quickly() -> None:
    drives = tuple(_drive(f"SCHOOL-{n:06d}") for n in range(20_000))
    matcher = _matcher(drives=drives)
    facts = [_facts(f"SCHOOL-{n:06d}") for n in range(0, 20_000, 2)] + [_facts("NOPE")] * 10_000
    start = time.perf_counter()
    decisions = [matcher.decide_device(f) for f in facts]
    elapsed = time.perf_counter() - start
    assert sum(d.verdict is ALLOWED for d in decisions) == 10_000
    # Generous bound (100 µs mean) so a loaded CI box does not flake; bench/ measures p99.
    assert elapsed < 2.0
