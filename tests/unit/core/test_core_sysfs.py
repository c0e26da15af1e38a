"""sysfs: reading a (hostile) USB device's facts, and writing the authorisation switches."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from guardd.devices.sysfs import (
    MAX_ATTRIBUTE_BYTES,
    UsbAuthorizer,
    display_text,
    is_root_hub,
    read_attribute,
    read_facts,
    strict_text,
)
from rules.device import DeviceFacts, UsbInterface

# A real mass-storage stick's descriptors (device, configuration, interface 08/06/50, endpoints).
STICK_DESCRIPTORS = bytes.fromhex(
    "12 01 00 02 00 00 00 40 f4 46 01 00 00 00 01 02 03 01"
    "09 02 20 00 01 01 00 80 32"
    "09 04 00 00 02 08 06 50 00"
    "07 05 81 02 00 02 00"
    "07 05 02 02 00 02 00"
)
STORAGE = UsbInterface(0x08, 0x06, 0x50)


def fake_device(root: Path, **attributes: bytes) -> str:
    """A sysfs device folder (2-1) holding the given attribute files."""
    folder = root / "devices" / "pci0000:00" / "usb2" / "2-1"
    folder.mkdir(parents=True)
    for key, value in attributes.items():
        (folder / key).write_bytes(value)
    return str(folder)


def stick(tmp_path: Path, **overrides: bytes) -> str:
    attributes = {
        "idVendor": b"46f4\n",
        "idProduct": b"0001\n",
        "serial": b"SCHOOL-000123\n",
        "descriptors": STICK_DESCRIPTORS,
        "manufacturer": b"QEMU\n",
        "product": b"QEMU USB HARDDRIVE\n",
    }
    attributes.update(overrides)
    return fake_device(tmp_path, **attributes)


# --- strict_text ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b"SCHOOL-1\n", "SCHOOL-1"),
        (b"SCHOOL-1", "SCHOOL-1"),
        (b"SCHOOL-1\n\n", "SCHOOL-1\n"),  # only one newline is the kernel's
        (b"  spaced  \n", "  spaced  "),  # the rest is the device's, kept exactly
        ("Séríal\n".encode(), "Séríal"),
        (b"", None),
        (b"\n", None),
        (None, None),
        (b"\xff\xfe\n", None),
        (b"ok\xc3\n", None),
    ],
)
def test_strict_text(raw: bytes | None, expected: str | None) -> None:
    assert strict_text(raw) == expected


# --- display_text ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b"SanDisk\n", "SanDisk"),
        (b"  Cruzer Blade \n", "Cruzer Blade"),
        (b"Evil\x1b[2J\x1b[31mRed", "Evil?[2J?[31mRed"),
        (b"two\nlines\ttab\x00nul\x7fdel", "two?lines?tab?nul?del"),
        ("c1\u009bcsi".encode(), "c1?csi"),
        (b"bad\xffbyte", "bad\ufffdbyte"),
        (b"", ""),
        (None, ""),
    ],
)
def test_display_text(raw: bytes | None, expected: str) -> None:
    assert display_text(raw) == expected


def test_display_text_is_capped() -> None:
    assert display_text(b"A" * 64) == "A" * 64
    shown = display_text(b"A" * 65)
    assert shown == "A" * 63 + "…"
    assert len(shown) == 64
    assert display_text("é".encode() * 20, limit=10) == "é" * 9 + "…"


# --- is_root_hub -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/sys/devices/pci0000:00/0000:00:14.0/usb1", True),
        ("/sys/devices/pci0000:00/0000:00:14.0/usb12", True),
        ("/sys/devices/pci0000:00/0000:00:14.0/usb2/2-1", False),
        ("/sys/devices/pci0000:00/0000:00:14.0/usb2/2-1/2-1.4", False),
        ("/sys/devices/pci0000:00/0000:00:14.0/usb2/2-1:1.0", False),
        ("/sys/devices/platform/usb", False),
        ("/sys/devices/platform/usbmon1x", False),
        ("/sys/devices/platform/myusb1", False),
    ],
)
def test_is_root_hub(path: str, expected: bool) -> None:
    assert is_root_hub(path) is expected


# --- read_attribute / read_facts -------------------------------------------------------------


def test_read_attribute_is_bounded(tmp_path: Path) -> None:
    path = fake_device(tmp_path, serial=b"S" * (MAX_ATTRIBUTE_BYTES * 2))
    assert read_attribute(path, "serial") == b"S" * MAX_ATTRIBUTE_BYTES
    assert read_attribute(path, "serial", limit=3) == b"SSS"
    assert read_attribute(path, "absent") is None


def test_read_attribute_does_not_follow_symlinks(tmp_path: Path) -> None:
    path = fake_device(tmp_path)
    secret = tmp_path / "secret"
    secret.write_bytes(b"root's secret\n")
    os.symlink(secret, os.path.join(path, "serial"))
    assert read_attribute(path, "serial") is None


def test_read_facts_of_a_normal_stick(tmp_path: Path) -> None:
    path = stick(tmp_path)
    assert read_facts(path) == DeviceFacts(
        id="2-1",
        vendor_id="46f4",
        product_id="0001",
        serial="SCHOOL-000123",
        device_class=0,
        interfaces=(STORAGE,),
        manufacturer="QEMU",
        product="QEMU USB HARDDRIVE",
    )


def test_uppercase_usb_ids_are_normalised(tmp_path: Path) -> None:
    facts = read_facts(stick(tmp_path, idVendor=b"46F4\n", idProduct=b"ABCD\n"))
    assert (facts.vendor_id, facts.product_id) == ("46f4", "abcd")


@pytest.mark.parametrize(
    "raw", [b"zzzz\n", b"46f\n", b"46f40\n", b"0x46\n", b"46\xf4\n", b"", b"\n", b"46 4\n"]
)
def test_malformed_usb_ids_become_empty(tmp_path: Path, raw: bytes) -> None:
    facts = read_facts(stick(tmp_path, idVendor=raw, idProduct=raw))
    assert facts.vendor_id == ""
    assert facts.product_id == ""


def test_missing_usb_ids_become_empty(tmp_path: Path) -> None:
    path = fake_device(tmp_path, serial=b"X\n")
    facts = read_facts(path)
    assert (facts.vendor_id, facts.product_id) == ("", "")
    assert (facts.manufacturer, facts.product) == ("", "")


def test_long_serial_is_kept_exactly(tmp_path: Path) -> None:
    serial = "S" + "0123456789" * 29 + "Z " + "é" * 7  # 300 characters, odd ones included
    assert len(serial) == 300
    facts = read_facts(stick(tmp_path, serial=serial.encode() + b"\n"))
    assert facts.serial == serial


@pytest.mark.parametrize("raw", [b"SCHOOL-\xff\xfe\n", b"\x80\n"])
def test_non_utf8_serial_is_none(tmp_path: Path, raw: bytes) -> None:
    assert read_facts(stick(tmp_path, serial=raw)).serial is None


def test_missing_serial_is_none(tmp_path: Path) -> None:
    path = stick(tmp_path)
    os.unlink(os.path.join(path, "serial"))
    assert read_facts(path).serial is None


def test_missing_descriptors_give_no_interfaces(tmp_path: Path) -> None:
    path = stick(tmp_path)
    os.unlink(os.path.join(path, "descriptors"))
    facts = read_facts(path)
    assert facts.interfaces is None
    assert facts.device_class is None
    assert facts.serial == "SCHOOL-000123"  # the rest is still read


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"garbage that is not a descriptor",
        STICK_DESCRIPTORS[:10],
        STICK_DESCRIPTORS[:-3],  # the last endpoint cut short
        STICK_DESCRIPTORS[:18] + b"\x00\x04",  # a zero-length descriptor
    ],
)
def test_garbage_descriptors_give_no_interfaces(tmp_path: Path, raw: bytes) -> None:
    facts = read_facts(stick(tmp_path, descriptors=raw))
    assert facts.interfaces is None
    assert facts.device_class is None


def test_hostile_display_strings_are_cleaned(tmp_path: Path) -> None:
    facts = read_facts(
        stick(tmp_path, manufacturer=b"\x1b]0;pwned\x07Evil\n", product=b"P" * 200 + b"\n")
    )
    assert facts.manufacturer == "?]0;pwned?Evil"
    assert facts.product == "P" * 63 + "…"


# --- UsbAuthorizer ---------------------------------------------------------------------------


def switchable(tmp_path: Path) -> tuple[str, Path, Path]:
    path = fake_device(tmp_path, authorized=b"1\n", authorized_default=b"1\n")
    return path, Path(path) / "authorized", Path(path) / "authorized_default"


def test_authorizer_switches_off_and_on(tmp_path: Path) -> None:
    path, authorized, _ = switchable(tmp_path)
    authorizer = UsbAuthorizer()
    authorizer.set_authorized(path, False)
    assert authorized.read_bytes()[:1] == b"0"
    authorizer.set_authorized(path, True)
    assert authorized.read_bytes()[:1] == b"1"


def test_authorizer_sets_default_deny(tmp_path: Path) -> None:
    path, authorized, default = switchable(tmp_path)
    UsbAuthorizer().set_default_deny(path)
    assert default.read_bytes()[:1] == b"0"
    assert authorized.read_bytes() == b"1\n"  # the controller itself stays on


def test_authorizer_refuses_to_follow_a_symlink(tmp_path: Path) -> None:
    path = fake_device(tmp_path)
    target = tmp_path / "elsewhere"
    target.write_bytes(b"1\n")
    os.symlink(target, os.path.join(path, "authorized"))
    with pytest.raises(OSError, match="Too many levels of symbolic links") as caught:
        UsbAuthorizer().set_authorized(path, False)
    assert caught.value.errno == errno.ELOOP
    assert target.read_bytes() == b"1\n"


def test_authorizer_never_creates_the_switch(tmp_path: Path) -> None:
    path = fake_device(tmp_path)
    with pytest.raises(FileNotFoundError):
        UsbAuthorizer().set_authorized(path, True)
    with pytest.raises(FileNotFoundError):
        UsbAuthorizer().set_default_deny(path)
    assert not os.path.exists(os.path.join(path, "authorized"))
    assert not os.path.exists(os.path.join(path, "authorized_default"))
