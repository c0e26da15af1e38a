"""Parse the raw USB descriptors a device reports, and udev's summary of its interfaces.

The bytes come from /sys/bus/usb/devices/X/descriptors: the 18-byte device descriptor, then
every configuration's descriptors as the device sent them. A malicious device chooses every
byte, so the parser checks each length before it reads, walks strictly forwards (every step
advances by at least 2 bytes, so it always ends) and reports any inconsistency as
DescriptorError, never as another exception.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from rules.device import UsbInterface

MAX_INPUT = 64 * 1024  # the kernel caps a configuration at 64 KiB (wTotalLength is 16 bits)
MAX_INTERFACES = 256  # real devices have a handful; more is an attempt to make us work

_DT_DEVICE = 0x01
_DT_INTERFACE = 0x04
_DEVICE_DESC_LEN = 18
_INTERFACE_DESC_LEN = 9

# udev's ID_USB_INTERFACES: ":" then "ccsspp:" per interface (two hex digits each for class,
# subclass, protocol). The length cap keeps a hostile value from costing anything.
_UDEV_INTERFACES_RE = re.compile(r":(?:[0-9a-fA-F]{6}:)+")
_UDEV_MAX_LEN = 1 + 7 * MAX_INTERFACES


class DescriptorError(ValueError):
    """The descriptors are malformed; the message says how, in a few words."""


@dataclass(frozen=True)
class ParsedDescriptors:
    """What the storage policy needs from a device's descriptors.

    `interfaces` lists each distinct (class, subclass, protocol) of every interface descriptor
    in every configuration and alternate setting, in the order first seen.
    """

    device_class: int
    vendor_id: int
    product_id: int
    interfaces: tuple[UsbInterface, ...]


def parse_descriptors(raw: bytes) -> ParsedDescriptors:
    """Parse a sysfs `descriptors` file; raise DescriptorError (only) if it is malformed.

    Interface descriptors are collected wherever they appear, not only where the USB spec
    puts them: seeing more interfaces than a lenient host would can only make the policy
    stricter, while skipping one could hide a storage interface.
    """
    if len(raw) > MAX_INPUT:
        raise DescriptorError(f"descriptors too long ({len(raw)} bytes)")
    if len(raw) < _DEVICE_DESC_LEN:
        raise DescriptorError(f"descriptors too short ({len(raw)} bytes)")
    if raw[0] != _DEVICE_DESC_LEN or raw[1] != _DT_DEVICE:
        raise DescriptorError("does not start with a device descriptor")
    # Multi-byte fields are little-endian, as on the wire (sysfs passes them through).
    return ParsedDescriptors(
        device_class=raw[4],
        vendor_id=int.from_bytes(raw[8:10], "little"),
        product_id=int.from_bytes(raw[10:12], "little"),
        interfaces=_interfaces(raw, _DEVICE_DESC_LEN),
    )


def _interfaces(raw: bytes, pos: int) -> tuple[UsbInterface, ...]:
    """Walk the descriptors from `pos` to the end, collecting interface triplets."""
    seen: dict[tuple[int, int, int], None] = {}  # an ordered set
    count = 0
    end = len(raw)
    # Kept tight: 64 KiB of 2-byte descriptors is 32k turns of this loop (a few ms).
    while pos < end:
        length = raw[pos]
        if length < 2 or pos + length > end:  # length >= 2 also covers a lone trailing byte
            raise _framing_error(raw, pos)
        if raw[pos + 1] == _DT_INTERFACE:
            if length < _INTERFACE_DESC_LEN:
                raise DescriptorError(f"interface descriptor at byte {pos} is too short")
            count += 1
            if count > MAX_INTERFACES:
                raise DescriptorError(f"more than {MAX_INTERFACES} interfaces")
            seen.setdefault((raw[pos + 5], raw[pos + 6], raw[pos + 7]), None)
        pos += length
    return tuple(UsbInterface(c, s, p) for c, s, p in seen)


def _framing_error(raw: bytes, pos: int) -> DescriptorError:
    if pos + 2 > len(raw):
        return DescriptorError(f"descriptor header at byte {pos} runs past the end")
    if raw[pos] < 2:
        return DescriptorError(f"descriptor at byte {pos} has length {raw[pos]}")
    return DescriptorError(f"descriptor at byte {pos} runs past the end")


def interfaces_from_udev(value: str) -> tuple[UsbInterface, ...] | None:
    """Parse udev's ID_USB_INTERFACES (":080650:030101:"); None if malformed or empty.

    An empty list is treated as malformed: udev never writes one, and "no interfaces" must not
    read as "no storage".
    """
    if len(value) > _UDEV_MAX_LEN or not _UDEV_INTERFACES_RE.fullmatch(value):
        return None
    seen: dict[tuple[int, int, int], None] = {}
    for item in value[1:-1].split(":"):
        seen.setdefault((int(item[0:2], 16), int(item[2:4], 16), int(item[4:6], 16)), None)
    return tuple(UsbInterface(c, s, p) for c, s, p in seen)
