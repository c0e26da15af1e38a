"""Judge a USB device, and each volume on it, against the rules.

Pure and fast: the index is built once per RuleSet so each decision is a couple of dict
look-ups, whatever the number of enrolled drives. Reasons are shown verbatim to staff, so
they are plain English and never contain what the device said about itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from rules.device import DeviceFacts, DeviceKind, VolumeFacts, classify, is_camera_or_phone
from rules.model import Drive, RuleSet


class Verdict(StrEnum):
    """Whether a device or volume may be used."""

    ALLOWED = "allowed"
    BLOCKED = "blocked"


@dataclass(frozen=True)
class Decision:
    """A verdict, the rule that gave it and why, in words for staff.

    `label` is the enrolled drive's label when a drive rule matched, else "".
    """

    verdict: Verdict
    rule: str
    reason: str
    suspicious: bool = False
    label: str = ""

    @property
    def allowed(self) -> bool:
        """True when the verdict is ALLOWED."""
        return self.verdict is Verdict.ALLOWED


RULE_UNKNOWN = "default:unknown-device"
RULE_NON_STORAGE = "default:non-storage"
RULE_POLICY_NON_STORAGE = "policy:allow_non_storage"
RULE_SUSPICIOUS = "default:suspicious-composite"
RULE_NO_SERIAL = "default:no-serial"
RULE_NOT_ENROLLED = "default:not-enrolled"
RULE_REQUIRE_ENCRYPTION = "policy:require_encryption"

_ALLOWED, _BLOCKED = Verdict.ALLOWED, Verdict.BLOCKED

_UNKNOWN = Decision(_BLOCKED, RULE_UNKNOWN, "blocked: could not read what kind of device this is")
_NON_STORAGE = {
    DeviceKind.HID: Decision(
        _ALLOWED, RULE_NON_STORAGE, "allowed: keyboard or mouse (not a storage device)"
    ),
    DeviceKind.HUB: Decision(_ALLOWED, RULE_NON_STORAGE, "allowed: USB hub (not a storage device)"),
}
_OTHER_NON_STORAGE = Decision(_ALLOWED, RULE_NON_STORAGE, "allowed: not a storage device")
_ONLY_SCHOOL_DRIVES = Decision(
    _BLOCKED,
    RULE_POLICY_NON_STORAGE,
    "blocked: only school drives may be connected to this machine",
)
_SUSPICIOUS = Decision(
    _BLOCKED,
    RULE_SUSPICIOUS,
    "blocked: suspicious device: it is a storage drive and a keyboard at once, "
    "a trick used by malicious USB sticks",
    suspicious=True,
)
_NO_SERIAL = Decision(
    _BLOCKED,
    RULE_NO_SERIAL,
    "blocked: this drive has no readable serial number, so it cannot be a school drive",
)
_OTHER_MAKE = Decision(
    _BLOCKED,
    RULE_NOT_ENROLLED,
    "blocked: this drive was not issued by the school "
    "(its serial number is enrolled for a different make of drive)",
)
_NOT_ENROLLED = Decision(
    _BLOCKED, RULE_NOT_ENROLLED, "blocked: this drive was not issued by the school"
)
_PHONE_NOT_ENROLLED = Decision(
    _BLOCKED, RULE_NOT_ENROLLED, "blocked: this phone or camera was not issued by the school"
)
_NOT_ENCRYPTED = "blocked: not encrypted (school drives must be encrypted with LUKS or BitLocker)"
_NOTHING_RECOGNISED = (
    "blocked: not encrypted (nothing on this drive could be recognised as LUKS or BitLocker)"
)
_WRONG_VOLUME = "blocked: this drive's encrypted volume is not the one IT enrolled"
_TYPE_NAMES = {"crypto_LUKS": "LUKS", "BitLocker": "BitLocker"}


def _enrolled(drive: Drive) -> Decision:
    return Decision(
        _ALLOWED, drive.rule_id, f"allowed: enrolled as '{drive.label}'", label=drive.label
    )


class Matcher:
    """Decides devices and volumes against one RuleSet (build a new Matcher on reload)."""

    def __init__(self, rules: RuleSet) -> None:
        self._rules = rules
        self._policy = rules.policy
        self._by_key: dict[tuple[str, str, str], Drive] = {d.key: d for d in rules.drives}
        self._serials: frozenset[str] = frozenset(d.serial for d in rules.drives)
        # Built once: the allowed decision for each drive, so deciding allocates nothing.
        self._allowed: dict[tuple[str, str, str], Decision] = {
            d.key: _enrolled(d) for d in rules.drives
        }

    @property
    def rules(self) -> RuleSet:
        """The RuleSet this matcher judges by."""
        return self._rules

    def find_drive(self, facts: DeviceFacts) -> Drive | None:
        """The enrolled drive with this device's serial, vendor_id and product_id, if any."""
        if not facts.serial:
            return None
        key = (facts.serial, facts.vendor_id.lower(), facts.product_id.lower())
        return self._by_key.get(key)

    def decide_device(self, facts: DeviceFacts) -> Decision:
        """Judge a USB device when it arrives (before any of its volumes is seen)."""
        kinds = classify(facts)
        if not kinds.known:
            return _UNKNOWN
        if not kinds.carries_storage:
            if not self._policy.allow_non_storage:
                return _ONLY_SCHOOL_DRIVES
            return _NON_STORAGE.get(kinds.kind, _OTHER_NON_STORAGE)
        if kinds.suspicious:
            # Even with an enrolled serial: serials are self-reported and trivially cloned.
            return _SUSPICIOUS
        return self._decide_storage(facts)

    def _decide_storage(self, facts: DeviceFacts) -> Decision:
        # A composite that carries storage (e.g. a headset with a card slot) lands here too.
        if not facts.serial:
            return _NO_SERIAL
        key = (facts.serial, facts.vendor_id.lower(), facts.product_id.lower())
        allowed = self._allowed.get(key)
        if allowed is not None:
            return allowed
        if facts.serial in self._serials:
            return _OTHER_MAKE
        return _PHONE_NOT_ENROLLED if is_camera_or_phone(facts) else _NOT_ENROLLED

    def decide_volume(self, facts: DeviceFacts, volume: VolumeFacts) -> Decision:
        """Judge one block device (disk or partition) of a device that was admitted.

        Fails closed: a volume of a device that is not an enrolled drive is blocked, and
        so is one of an enrolled drive the device check would block (e.g. suspicious).
        """
        drive = self.find_drive(facts)
        if drive is None:
            return _NOT_ENROLLED
        device = self.decide_device(facts)
        if device.verdict is not _ALLOWED:
            return device
        if not self._policy.require_encryption:
            return device
        if volume.has_partition_table and volume.fs_type == "":
            # The disk holds a partition table, not data; its partitions are judged one by one.
            return device
        if volume.fs_type in self._policy.encrypted_types:
            return self._encrypted(drive, volume)
        reason = _NOTHING_RECOGNISED if volume.fs_type == "" else _NOT_ENCRYPTED
        return Decision(_BLOCKED, RULE_REQUIRE_ENCRYPTION, reason, label=drive.label)

    def _encrypted(self, drive: Drive, volume: VolumeFacts) -> Decision:
        if drive.volume_uuids and volume.fs_uuid.lower() not in drive.volume_uuids:
            return Decision(_BLOCKED, drive.rule_id, _WRONG_VOLUME, label=drive.label)
        kind = _TYPE_NAMES.get(volume.fs_type, volume.fs_type)
        reason = f"allowed: enrolled as '{drive.label}', encrypted ({kind})"
        return Decision(_ALLOWED, drive.rule_id, reason, label=drive.label)
