"""The enrolled drives and the storage policy, as frozen values.

The field checks live here, next to the fields, and the parser reuses them so a rules file
and a hand-built RuleSet obey the same limits. The check functions return a plain-English
message (or None) instead of raising, so the parser can collect every problem in a file.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum

from rules import _text
from rules.cloud.allow import CloudDefault, CloudRule
from rules.cloud.defaults import default_signatures
from rules.cloud.providers import Signatures
from rules.errors import Problem

# A USB string descriptor holds at most 126 UTF-16 code units, so no real serial is longer.
MAX_SERIAL_LEN = 126
MAX_LABEL_LEN = 80
MAX_RULE_ID_LEN = 64
MAX_FS_TYPE_LEN = 64
MAX_VOLUME_UUID_LEN = 64

DEFAULT_ENCRYPTED_TYPES = frozenset({"crypto_LUKS", "BitLocker"})

_USB_ID = re.compile(r"[0-9a-fA-F]{4}")
_RULE_ID = re.compile(r"[a-z0-9._-]{1,64}")
_FS_TYPE = re.compile(r"[A-Za-z0-9_.-]{1,64}")
# LUKS and BitLocker UUIDs are GUIDs; FAT/NTFS ones are shorter hex groups. Hex and dashes only.
_VOLUME_UUID = re.compile(r"[0-9a-fA-F]+(?:-[0-9a-fA-F]+)*")


# Defined in rules._text (the cloud rules use them too); still part of this module's interface.
show = _text.show
text_problem = _text.text_problem


def usb_id_problem(name: str, value: str) -> str | None:
    """Check a vendor_id/product_id: exactly 4 hex digits (either case)."""
    if _USB_ID.fullmatch(value):
        return None
    return f'{name} must be exactly 4 hex digits, like "0781" (got {show(value)})'


def rule_id_problem(value: str) -> str | None:
    """Check an explicit rule id: the characters are safe in logs, file names and CLIs."""
    if _RULE_ID.fullmatch(value):
        return None
    return f"id must be 1 to 64 characters from a-z, 0-9, '.', '_' and '-' (got {show(value)})"


def fs_type_problem(value: str) -> str | None:
    """Check a filesystem type name as udev reports it in ID_FS_TYPE."""
    if _FS_TYPE.fullmatch(value):
        return None
    return (
        'encrypted_types entries must be filesystem type names like "crypto_LUKS" '
        f"(got {show(value)})"
    )


def volume_uuid_problem(value: str) -> str | None:
    """Check a volume UUID as udev reports it in ID_FS_UUID."""
    if len(value) <= MAX_VOLUME_UUID_LEN and _VOLUME_UUID.fullmatch(value):
        return None
    return (
        "volume_uuids entries must be UUIDs of hex digits and dashes, "
        f'like "0f5e3c1a-8d2b-4c6e-9a7f-1b2c3d4e5f60" (got {show(value)})'
    )


def default_rule_id(vendor_id: str, product_id: str, serial: str) -> str:
    """The id a drive gets when the rules file gives none."""
    return f"drive:{vendor_id}:{product_id}:{serial}"


def _check(message: str | None) -> None:
    if message is not None:
        raise ValueError(message)


class OnInfected(StrEnum):
    """What happens to a drive on which a virus is found (it is read-only from the start)."""

    BLOCK = "block"  # held read-only, then switched off
    READ_ONLY = "read-only"  # left connected but read-only and not executable


@dataclass(frozen=True)
class Policy:
    """What the rules say beyond the list of drives."""

    require_encryption: bool = True
    encrypted_types: frozenset[str] = DEFAULT_ENCRYPTED_TYPES
    allow_non_storage: bool = True
    on_infected: OnInfected = OnInfected.BLOCK
    accept_limits_exceeded: bool = False  # a file too big or deep to scan is not clean
    cloud_default: CloudDefault = CloudDefault.BLOCK  # sync folders no [[cloud]] rule allows

    def __post_init__(self) -> None:
        if not self.encrypted_types:
            raise ValueError("encrypted_types must name at least one filesystem type")
        for fs_type in sorted(self.encrypted_types):
            _check(fs_type_problem(fs_type))


@dataclass(frozen=True)
class Drive:
    """One enrolled drive: matched by serial, vendor_id and product_id all together.

    vendor_id, product_id and volume_uuids are stored lowercase; `source` and `line` say
    where the drive was enrolled (its `[[drive]]` header), for messages and audit.
    """

    rule_id: str
    serial: str
    vendor_id: str
    product_id: str
    label: str
    volume_uuids: frozenset[str] = field(default_factory=frozenset)
    source: str = ""
    line: int = 0

    def __post_init__(self) -> None:
        _check(text_problem("serial", self.serial, MAX_SERIAL_LEN))
        for name, value in (("vendor_id", self.vendor_id), ("product_id", self.product_id)):
            _check(usb_id_problem(name, value))
            if value != value.lower():
                raise ValueError(f"{name} must be stored lowercase (got {show(value)})")
        if self.rule_id != default_rule_id(self.vendor_id, self.product_id, self.serial):
            _check(rule_id_problem(self.rule_id))
        # A default label is the serial, which may be longer than an explicit label may be.
        _check(text_problem("label", self.label, max(MAX_LABEL_LEN, len(self.serial))))
        for uuid in sorted(self.volume_uuids):
            _check(volume_uuid_problem(uuid))
            if uuid != uuid.lower():
                raise ValueError(f"volume_uuids must be stored lowercase (got {show(uuid)})")
        if self.line < 0:
            raise ValueError("line must not be negative")

    @property
    def key(self) -> tuple[str, str, str]:
        """What identifies the physical drive: (serial, vendor_id, product_id)."""
        return (self.serial, self.vendor_id, self.product_id)


@dataclass(frozen=True)
class RuleSet:
    """The policy, every enrolled drive and every cloud allow rule, from the files named in
    `sources`; `signatures` are the packaged providers with those the rules files add."""

    policy: Policy
    drives: tuple[Drive, ...]
    sources: tuple[str, ...]
    cloud: tuple[CloudRule, ...] = ()
    signatures: Signatures = field(default_factory=default_signatures)

    def __post_init__(self) -> None:
        problems = duplicate_problems(self.drives) + cloud_duplicate_problems(
            self.cloud, self.drives
        )
        if problems:
            raise ValueError(problems[0].message)
        unknown = next((r for r in self.cloud if self.signatures.get(r.provider) is None), None)
        if unknown is not None:
            raise ValueError(f"cloud rule {show(unknown.rule_id)} names an unknown provider")


def _where(first: Drive | CloudRule, second: Drive | CloudRule) -> str:
    if first.source == second.source:
        return f"line {first.line}"
    return f"{first.source}:{first.line}"


def duplicate_problems(drives: Iterable[Drive]) -> list[Problem]:
    """A problem for every drive that repeats an earlier one's (serial, vendor, product) or id."""
    by_key: dict[tuple[str, str, str], Drive] = {}
    by_id: dict[str, Drive] = {}
    problems: list[Problem] = []
    for drive in drives:
        first = by_key.setdefault(drive.key, drive)
        if first is not drive:
            message = (
                f"duplicate drive: serial {show(drive.serial)} with vendor_id {drive.vendor_id} "
                f"and product_id {drive.product_id} is already enrolled at {_where(first, drive)}"
            )
            problems.append(Problem(drive.source, drive.line, message))
            continue
        first = by_id.setdefault(drive.rule_id, drive)
        if first is not drive:
            message = (
                f"duplicate rule id {show(drive.rule_id)}: already used at {_where(first, drive)}"
            )
            problems.append(Problem(drive.source, drive.line, message))
    return problems


def cloud_duplicate_problems(
    rules: Iterable[CloudRule], drives: Iterable[Drive] = ()
) -> list[Problem]:
    """A problem for every cloud rule whose id an earlier cloud rule or a drive already has."""
    by_id: dict[str, Drive | CloudRule] = {drive.rule_id: drive for drive in drives}
    problems: list[Problem] = []
    for rule in rules:
        first = by_id.get(rule.rule_id)
        if first is None:
            by_id[rule.rule_id] = rule
        else:
            message = (
                f"duplicate rule id {show(rule.rule_id)}: already used at {_where(first, rule)}"
            )
            if rule.rule_id.startswith("cloud:"):
                message += "; give each [[cloud]] rule its own id"
            problems.append(Problem(rule.source, rule.line, message))
    return problems
