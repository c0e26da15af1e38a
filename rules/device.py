"""What guardd knows about a USB device and its volumes: plain, frozen facts.

The facts are gathered by guardd's sysfs reader (hostile input, already sanitised there) and
judged here, so this module and the matcher never touch the system.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

# USB class codes (usb.org "Defined Class Codes").
CLASS_PER_INTERFACE = 0x00
CLASS_STILL_IMAGE = 0x06  # cameras and phones speaking PTP/MTP
CLASS_MASS_STORAGE = 0x08  # sticks, drives, card readers, CD/DVD drives
CLASS_HID = 0x03  # keyboards, mice
CLASS_HUB = 0x09

STORAGE_CLASSES = frozenset({CLASS_STILL_IMAGE, CLASS_MASS_STORAGE})

# Android's MTP function is vendor-specific (ff/ff/00), not still-image (06); the "MTP"
# interface string that would say so can only be read once the device is authorised. On a
# phone maker's vendor id that interface is taken for a phone. (iPhones also offer 06.)
ANDROID_MTP = (0xFF, 0xFF, 0x00)
PHONE_VENDORS = {
    "18d1": "Google",
    "04e8": "Samsung",
    "22b8": "Motorola",
    "1004": "LG",
    "0fce": "Sony",
    "0bb4": "HTC",
    "12d1": "Huawei",
    "2717": "Xiaomi",
    "2a70": "OnePlus",
    "22d9": "OPPO",
    "2d95": "vivo",
    "19d2": "ZTE",
    "17ef": "Lenovo",
    "0e8d": "MediaTek",
    "1ebf": "Fairphone",
    "2a45": "Meizu",
    "05c6": "Qualcomm",
    "29a9": "Nothing",
}


class DeviceKind(StrEnum):
    """What a USB device is, as far as the storage policy cares."""

    STORAGE = "storage"
    HID = "hid"
    HUB = "hub"
    COMPOSITE = "composite"
    OTHER = "other"


@dataclass(frozen=True)
class UsbInterface:
    """One interface (class, subclass, protocol) a device offers."""

    cls: int
    subclass: int
    protocol: int


@dataclass(frozen=True)
class DeviceFacts:
    """A USB device as read from sysfs when it arrived.

    `serial` is None when the device reports none or one that is not valid UTF-8;
    `interfaces` is None when its descriptors could not be read or parsed.
    """

    id: str
    vendor_id: str
    product_id: str
    serial: str | None
    device_class: int | None
    interfaces: tuple[UsbInterface, ...] | None
    manufacturer: str = ""
    product: str = ""


@dataclass(frozen=True)
class Classification:
    """The kind of a device and the flags the policy needs."""

    kind: DeviceKind
    carries_storage: bool
    suspicious: bool
    known: bool


def classify(facts: DeviceFacts) -> Classification:
    """Say what kind of device this is; unreadable descriptors count as storage (fail closed).

    No interface at all counts as unreadable too: the kernel reads every configuration before
    the device is authorised, so a device that declares nothing is hiding something.
    """
    if not facts.interfaces:
        return Classification(DeviceKind.OTHER, carries_storage=True, suspicious=False, known=False)
    classes = {i.cls for i in facts.interfaces}
    if _android_mtp(facts):
        classes.add(CLASS_STILL_IMAGE)
    if facts.device_class not in (None, CLASS_PER_INTERFACE):
        classes.add(facts.device_class)
    storage = bool(classes & STORAGE_CLASSES)
    others = classes - STORAGE_CLASSES
    if storage and others:
        return Classification(
            DeviceKind.COMPOSITE, carries_storage=True, suspicious=CLASS_HID in others, known=True
        )
    if storage:
        return Classification(
            DeviceKind.STORAGE, carries_storage=True, suspicious=False, known=True
        )
    if classes == {CLASS_HID}:
        kind = DeviceKind.HID
    elif classes == {CLASS_HUB}:
        kind = DeviceKind.HUB
    else:
        kind = DeviceKind.OTHER
    return Classification(kind, carries_storage=False, suspicious=False, known=True)


def _android_mtp(facts: DeviceFacts) -> bool:
    if facts.vendor_id not in PHONE_VENDORS or facts.interfaces is None:
        return False
    return any((i.cls, i.subclass, i.protocol) == ANDROID_MTP for i in facts.interfaces)


def is_camera_or_phone(facts: DeviceFacts) -> bool:
    """True when the device speaks still-image/PTP (class 06) or Android's MTP."""
    if facts.interfaces is None:
        return False
    return _android_mtp(facts) or any(i.cls == CLASS_STILL_IMAGE for i in facts.interfaces)


@dataclass(frozen=True)
class VolumeFacts:
    """A block device (disk or partition) that appeared under an admitted USB device.

    `fs_type` is udev's/blkid's ID_FS_TYPE ("" when nothing was recognised);
    `has_partition_table` is true for a disk whose content is a partition table.
    """

    name: str
    device_id: str
    fs_type: str
    fs_uuid: str
    has_partition_table: bool
