"""USB descriptor parsing: real devices, malformed input, and fuzzing with hostile bytes."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from guardd.devices.descriptors import (
    MAX_INPUT,
    MAX_INTERFACES,
    DescriptorError,
    ParsedDescriptors,
    interfaces_from_udev,
    parse_descriptors,
)
from rules.device import UsbInterface


def hexbytes(*parts: str) -> bytes:
    return b"".join(bytes.fromhex(part) for part in parts)


def interface(number: int, alt: int, cls: int, subclass: int, protocol: int) -> bytes:
    return bytes([9, 4, number, alt, 0, cls, subclass, protocol, 0])


def config(value: int, *body: bytes) -> bytes:
    """A configuration descriptor with a correct wTotalLength, followed by its body."""
    total = 9 + sum(len(b) for b in body)
    count = sum(1 for b in body if b[1] == 4 and b[3] == 0)
    header = bytes([9, 2]) + total.to_bytes(2, "little") + bytes([count, value, 0, 0x80, 50])
    return header + b"".join(body)


STORAGE = UsbInterface(0x08, 0x06, 0x50)
UAS = UsbInterface(0x08, 0x06, 0x62)
KEYBOARD = UsbInterface(0x03, 0x01, 0x01)

# A real mass-storage stick, byte for byte.
STICK_DEVICE = hexbytes("12 01 00 02 00 00 00 40 f4 46 01 00 00 00 01 02 03 01")
STICK = hexbytes(
    "12 01 00 02 00 00 00 40 f4 46 01 00 00 00 01 02 03 01",
    "09 02 20 00 01 01 00 80 32",
    "09 04 00 00 02 08 06 50 00",
    "07 05 81 02 00 02 00",
    "07 05 02 02 00 02 00",
)
KEYBOARD_BYTES = hexbytes(
    "12 01 00 02 00 00 00 08 6d 04 1c c3 00 01 01 02 00 01",
    "09 02 22 00 01 01 00 a0 32",
    "09 04 00 00 01 03 01 01 00",
    "09 21 11 01 00 01 22 3f 00",  # HID class descriptor
    "07 05 81 03 08 00 0a",
)
ENDPOINT_IN = hexbytes("07 05 81 02 00 02 00")
ENDPOINT_OUT = hexbytes("07 05 02 02 00 02 00")


def test_real_usb_stick() -> None:
    assert parse_descriptors(STICK) == ParsedDescriptors(
        device_class=0, vendor_id=0x46F4, product_id=0x0001, interfaces=(STORAGE,)
    )


def test_keyboard() -> None:
    parsed = parse_descriptors(KEYBOARD_BYTES)
    assert (parsed.vendor_id, parsed.product_id) == (0x046D, 0xC31C)
    assert parsed.interfaces == (KEYBOARD,)


def test_composite_storage_and_keyboard_with_other_descriptors_between() -> None:
    iad = hexbytes("08 0b 00 01 08 06 50 00")  # interface association: skipped, not an interface
    raw = STICK_DEVICE + config(
        1,
        iad,
        interface(0, 0, 0x08, 0x06, 0x50),
        ENDPOINT_IN,
        ENDPOINT_OUT,
        interface(1, 0, 0x03, 0x01, 0x01),
        hexbytes("09 21 11 01 00 01 22 3f 00"),
        hexbytes("07 05 83 03 08 00 0a"),
    )
    assert parse_descriptors(raw).interfaces == (STORAGE, KEYBOARD)


def test_alternate_settings_are_included_and_deduplicated() -> None:
    raw = STICK_DEVICE + config(
        1,
        interface(0, 0, 0x08, 0x06, 0x50),
        ENDPOINT_IN,
        interface(0, 1, 0x08, 0x06, 0x62),
        ENDPOINT_IN,
        interface(0, 2, 0x08, 0x06, 0x50),
    )
    assert parse_descriptors(raw).interfaces == (STORAGE, UAS)


def test_every_configuration_counts() -> None:
    raw = (
        STICK_DEVICE
        + config(1, interface(0, 0, 0x03, 0x01, 0x01))
        + config(2, interface(0, 0, 0x08, 0x06, 0x50), interface(1, 0, 0x03, 0x01, 0x01))
    )
    assert parse_descriptors(raw).interfaces == (KEYBOARD, STORAGE)


def test_device_class_and_no_configuration() -> None:
    hub = bytearray(STICK_DEVICE)
    hub[4] = 0x09
    assert parse_descriptors(bytes(hub)) == ParsedDescriptors(
        device_class=0x09, vendor_id=0x46F4, product_id=1, interfaces=()
    )


def test_longer_interface_descriptor_is_accepted() -> None:
    raw = STICK_DEVICE + interface(0, 0, 0x08, 0x06, 0x50) + b"\x00\x00"
    longer = raw[:18] + bytes([11]) + raw[19:]
    assert parse_descriptors(longer).interfaces == (STORAGE,)


def test_exactly_the_maximum_of_interfaces_is_accepted() -> None:
    raw = STICK_DEVICE + b"".join(interface(n, 0, 0x03, 0, n) for n in range(MAX_INTERFACES))
    assert len(parse_descriptors(raw).interfaces) == MAX_INTERFACES


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"", "too short"),
        (STICK[:17], "too short"),
        (b"\x11" + STICK[1:], "device descriptor"),  # bLength 17
        (b"\x12\x02" + STICK[2:], "device descriptor"),  # a configuration descriptor first
        (STICK[:18] + b"\x00\x02", "length 0"),
        (STICK[:18] + b"\x01\x02", "length 1"),
        (STICK + b"\x07", "header at byte 50 runs past the end"),
        (STICK[:-1], "runs past the end"),
        (STICK[:18] + b"\xff\x02" + b"\x00" * 100, "runs past the end"),
        (STICK[:18] + hexbytes("08 04 00 00 01 08 06 50"), "interface descriptor at byte 18"),
        (STICK[:18] + hexbytes("02 04"), "interface descriptor at byte 18 is too short"),
        (STICK + b"\x00" * (MAX_INPUT - len(STICK) + 1), "too long"),
        (
            STICK_DEVICE + interface(0, 0, 8, 6, 0x50) * (MAX_INTERFACES + 1),
            f"more than {MAX_INTERFACES} interfaces",
        ),
    ],
)
def test_malformed_descriptors_are_rejected(raw: bytes, reason: str) -> None:
    with pytest.raises(DescriptorError, match=reason):
        parse_descriptors(raw)


def test_descriptor_error_is_a_value_error() -> None:
    assert issubclass(DescriptorError, ValueError)


def parse_or_reject(raw: bytes) -> ParsedDescriptors | None:
    try:
        result = parse_descriptors(raw)
    except DescriptorError:
        return None
    assert len(result.interfaces) == len(set(result.interfaces))
    assert len(result.interfaces) <= MAX_INTERFACES
    assert 0 <= result.vendor_id <= 0xFFFF
    assert 0 <= result.product_id <= 0xFFFF
    return result


@settings(max_examples=500, database=None)
@given(st.binary(max_size=600))
def test_arbitrary_bytes_only_raise_descriptor_error(raw: bytes) -> None:
    parse_or_reject(raw)


@settings(max_examples=500, database=None)
@given(st.binary(max_size=600))
def test_arbitrary_bytes_after_a_device_descriptor(tail: bytes) -> None:
    parse_or_reject(STICK_DEVICE + tail)


@settings(max_examples=500, database=None)
@given(
    st.lists(st.tuples(st.integers(0, len(STICK) - 1), st.integers(0, 255)), max_size=6),
    st.integers(0, len(STICK)),
    st.binary(max_size=40),
)
def test_mutated_stick_only_raises_descriptor_error(
    edits: list[tuple[int, int]], cut: int, extra: bytes
) -> None:
    raw = bytearray(STICK)
    for index, value in edits:
        raw[index] = value
    parse_or_reject(bytes(raw[:cut]) + extra)


descriptor = st.builds(
    lambda kind, body: bytes([len(body) + 2, kind]) + body,
    st.sampled_from([1, 2, 4, 5, 0x0B, 0x21, 0x24, 0x30]),
    st.binary(max_size=20),
)


@settings(max_examples=500, database=None)
@given(st.lists(descriptor, max_size=30))
def test_well_framed_random_descriptors(descriptors: list[bytes]) -> None:
    raw = STICK_DEVICE + b"".join(descriptors)
    result = parse_or_reject(raw)
    if all(d[1] != 4 or len(d) >= 9 for d in descriptors):
        assert result is not None


# -- udev's ID_USB_INTERFACES --------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (":080650:", (STORAGE,)),
        (":080650:030101:", (STORAGE, KEYBOARD)),
        (":030101:080650:030101:", (KEYBOARD, STORAGE)),
        (":0806AB:", (UsbInterface(8, 6, 0xAB),)),
    ],
)
def test_udev_interfaces(value: str, expected: tuple[UsbInterface, ...]) -> None:
    assert interfaces_from_udev(value) == expected


@pytest.mark.parametrize(
    "value",
    [
        "",
        ":",
        "::",
        "080650:",
        ":080650",
        ":08065:",
        ":0806500:",
        ":08 650:",
        ":+80650:",
        ":08_650:",
        ":0x0650:",
        ":080650:\n",
        ":080650::030101:",
        ":\u0660\u0668\u0660\u0666\u0665\u0660:",  # Arabic-Indic digits int() would accept
        ":" + "030101:" * (MAX_INTERFACES + 1),
    ],
)
def test_malformed_udev_interfaces(value: str) -> None:
    assert interfaces_from_udev(value) is None


def test_udev_interfaces_at_the_limit() -> None:
    value = ":" + "".join(f"03{n:02x}01:" for n in range(MAX_INTERFACES))
    result = interfaces_from_udev(value)
    assert result is not None
    assert len(result) == MAX_INTERFACES


@given(st.text(max_size=80))
@settings(database=None)
def test_udev_arbitrary_text_never_raises(value: str) -> None:
    result = interfaces_from_udev(value)
    if result is not None:
        assert len(result) == len(set(result)) > 0
