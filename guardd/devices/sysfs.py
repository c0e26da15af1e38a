"""The kernel's USB sysfs: read a device's facts and switch it on or off (`authorized`).

Everything read here was chosen by the device (a malicious stick picks its own serial and
descriptors): reads are bounded, decoding is strict, and anything odd becomes "unknown",
which the policy treats as not enrolled.
"""

from __future__ import annotations

import errno
import os
import re
import unicodedata

from guardd.devices.descriptors import DescriptorError, parse_descriptors
from rules.device import DeviceFacts

MAX_ATTRIBUTE_BYTES = 4096
MAX_DESCRIPTOR_BYTES = 65536
_HEX4 = re.compile(r"[0-9a-f]{4}")
_ROOT_HUB = re.compile(r"usb[0-9]+")


def is_root_hub(sys_path: str) -> bool:
    """Root hubs (`usbN`) are the controllers: never judged, never switched off."""
    return _ROOT_HUB.fullmatch(os.path.basename(sys_path)) is not None


def read_attribute(sys_path: str, name: str, limit: int = MAX_ATTRIBUTE_BYTES) -> bytes | None:
    """Read at most `limit` bytes of a sysfs attribute; None when it does not exist."""
    try:
        fd = os.open(os.path.join(sys_path, name), os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
    except OSError:
        return None
    try:
        return os.read(fd, limit)
    except OSError:
        return None
    finally:
        os.close(fd)


def strict_text(raw: bytes | None) -> str | None:
    """A sysfs string value: one trailing newline dropped; None if absent, empty or not UTF-8."""
    if raw is None:
        return None
    if raw.endswith(b"\n"):
        raw = raw[:-1]
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return None
    return text or None


def display_text(raw: bytes | None, limit: int = 64) -> str:
    """A device-chosen string made safe to show a person: no control characters, bounded."""
    text = (raw or b"").decode("utf-8", errors="replace").strip()
    # Control and format characters (U+202E reverses the text after it) are replaced.
    text = "".join("?" if unicodedata.category(c) in ("Cc", "Cf") else c for c in text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _hex_id(raw: bytes | None) -> str:
    text = (strict_text(raw) or "").strip().lower()
    return text if _HEX4.fullmatch(text) else ""


def read_facts(sys_path: str) -> DeviceFacts:
    """Gather a USB device's facts from sysfs (works before the device is authorised)."""
    descriptors = read_attribute(sys_path, "descriptors", MAX_DESCRIPTOR_BYTES)
    device_class: int | None = None
    interfaces = None
    if descriptors is not None:
        try:
            parsed = parse_descriptors(descriptors)
        except DescriptorError:
            pass
        else:
            device_class, interfaces = parsed.device_class, parsed.interfaces
    return DeviceFacts(
        id=os.path.basename(sys_path),
        vendor_id=_hex_id(read_attribute(sys_path, "idVendor")),
        product_id=_hex_id(read_attribute(sys_path, "idProduct")),
        serial=strict_text(read_attribute(sys_path, "serial")),
        device_class=device_class,
        interfaces=interfaces,
        manufacturer=display_text(read_attribute(sys_path, "manufacturer")),
        product=display_text(read_attribute(sys_path, "product")),
    )


class UsbAuthorizer:
    """Writes the kernel's USB authorisation switches (the USBGuard mechanism)."""

    def set_authorized(self, sys_path: str, allowed: bool) -> None:
        """Switch a device on (driver binding allowed) or off (interfaces unbound)."""
        _write(sys_path, "authorized", b"1" if allowed else b"0")

    def set_default_deny(self, sys_path: str) -> None:
        """Make a controller keep every new device off until guardd decides."""
        _write(sys_path, "authorized_default", b"0")


def _write(sys_path: str, name: str, value: bytes) -> None:
    fd = os.open(os.path.join(sys_path, name), os.O_WRONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
    try:
        if os.write(fd, value) != len(value):
            raise OSError(errno.EIO, "short write")
    finally:
        os.close(fd)
