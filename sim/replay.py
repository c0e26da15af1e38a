"""Replay uevents recorded from a real kernel into a umockdev testbed.

The recording (tests/fixtures/real-kernel-usb-uevents.json, from ../shared/fixtures) holds
udev's properties but not sysfs attributes, so the attributes a kernel would show for a USB
device (idVendor, idProduct, serial, descriptors) are derived from its properties.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sim.usb import UsbDevice, UsbTestbed, descriptors_hex

FIXTURE = Path(__file__).resolve().parent.parent / "tests/fixtures/real-kernel-usb-uevents.json"
_SKIPPED_PROPS = {"ACTION", "SEQNUM", "DEVPATH", "USEC_INITIALIZED"}


def recorded_events(path: Path = FIXTURE) -> list[dict[str, Any]]:
    """The recorded uevents, in the order the kernel sent them."""
    events: list[dict[str, Any]] = json.loads(path.read_text())["events"]
    return [e for e in events if e.get("type") == "uevent"]


def _usb_attributes(bed: UsbTestbed, event: dict[str, Any]) -> list[str]:
    props = event["props"]
    interfaces = tuple(x for x in props.get("ID_USB_INTERFACES", "").split(":") if x)
    device = UsbDevice(
        serial=None,
        vendor_id=props["ID_VENDOR_ID"],
        product_id=props["ID_MODEL_ID"],
        interfaces=interfaces or ("080650",),
    )
    bus = int(props.get("BUSNUM", "1"))
    default = bed.read(bed.controller(bus), "authorized_default").strip()
    lines = [
        f"A: idVendor={device.vendor_id}",
        f"A: idProduct={device.product_id}",
        f"A: authorized={'0' if default == '0' else '1'}",
        f"H: descriptors={descriptors_hex(device)}",
    ]
    if "ID_SERIAL_SHORT" in props:
        lines.append("H: serial=" + (props["ID_SERIAL_SHORT"] + "\n").encode().hex())
    return lines


def _add(bed: UsbTestbed, event: dict[str, Any]) -> None:
    props = event["props"]
    lines = [f"P: {event['sys_path'][len('/sys') :]}"]
    lines += [f"E: {k}={v}" for k, v in props.items() if k not in _SKIPPED_PROPS]
    if event["subsystem"] == "usb" and event["devtype"] == "usb_device":
        lines += _usb_attributes(bed, event)
    if not bed.tb.add_from_string("\n".join(lines) + "\n"):
        raise RuntimeError(f"umockdev refused {event['sys_path']}")


def replay(bed: UsbTestbed, events: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """Send each event into the testbed; yield it after it went out (callers may wait there)."""
    present: set[str] = set()
    for event in events:
        path, action = event["sys_path"], event["action"]
        if action == "add" and path not in present:
            _add(bed, event)
            present.add(path)
        elif action == "remove":
            bed.tb.uevent(path, "remove")
            bed.tb.remove_device(path)
            present.discard(path)
        elif path in present:
            bed.tb.uevent(path, action)
        yield event
