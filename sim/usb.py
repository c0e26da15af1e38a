"""USB sticks, keyboards and hubs in a umockdev testbed, shaped like a real kernel's.

The shapes follow ../shared/fixtures/real-kernel-usb-uevents.json (a Debian guest, kernel 6.1,
QEMU's xhci and usb-storage): the same sysfs paths, properties and event order. Attributes,
the binary `descriptors` included, exist before the 'add' uevent goes out, as in a kernel,
so a daemon that decides from the kernel's event and sysfs sees what it would see for real.
Must run in a process started under umockdev's preload (`umockdev-wrapper`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import gi

gi.require_version("UMockdev", "1.0")
from gi.repository import UMockdev  # noqa: E402

PCI = "/sys/devices/pci0000:00/0000:00:04.0"


@dataclass(frozen=True)
class Volume:
    """A block device on a stick: its filesystem as blkid would report it."""

    fs_type: str
    fs_uuid: str = "3f1e7c5a-0b7d-4c1e-9a55-5d6c2f8e9b10"
    partition: int = 0  # 0: the whole disk; n: partition n of a partitioned disk


@dataclass(frozen=True)
class UsbDevice:
    """A USB device to plug: identity, interfaces (udev's cc/sc/pp hex) and volumes."""

    serial: bytes | None
    vendor_id: str = "46f4"
    product_id: str = "0001"
    interfaces: tuple[str, ...] = ("080650",)
    device_class: int = 0
    manufacturer: str = "QEMU"
    product: str = "QEMU USB HARDDRIVE"
    volumes: tuple[Volume, ...] = field(default_factory=tuple)


def stick(serial: str | bytes, fs_type: str = "crypto_LUKS", **kw: object) -> UsbDevice:
    """A mass-storage stick with one volume (as QEMU's usb-storage presents an image)."""
    raw = serial.encode() if isinstance(serial, str) else serial
    volumes = (Volume(fs_type),) if fs_type else ()
    return UsbDevice(serial=raw, volumes=volumes, **kw)  # type: ignore[arg-type]


KEYBOARD = UsbDevice(
    serial=None,
    vendor_id="046d",
    product_id="c31c",
    interfaces=("030101", "030000"),
    manufacturer="Logitech",
    product="USB Keyboard",
)
MOUSE = UsbDevice(
    serial=None,
    vendor_id="046d",
    product_id="c077",
    interfaces=("030102",),
    manufacturer="Logitech",
    product="USB Optical Mouse",
)
HUB = UsbDevice(
    serial=None,
    vendor_id="05e3",
    product_id="0610",
    interfaces=("090000",),
    device_class=9,
    manufacturer="GenesysLogic",
    product="USB2.1 Hub",
)


def descriptors_hex(device: UsbDevice) -> str:
    """The raw descriptors sysfs would show: device, configuration, one interface each."""
    vid, pid = int(device.vendor_id, 16), int(device.product_id, 16)
    dev = bytes([18, 1, 0x00, 0x02, device.device_class, 0, 0, 64])
    dev += vid.to_bytes(2, "little") + pid.to_bytes(2, "little") + bytes([0, 1, 1, 2, 3, 1])
    body = b""
    for number, iface in enumerate(device.interfaces):
        cls, sub, proto = (int(iface[i : i + 2], 16) for i in (0, 2, 4))
        body += bytes([9, 4, number, 0, 2, cls, sub, proto, 0])
        body += bytes([7, 5, 0x81, 2, 0, 2, 0, 7, 5, 0x02, 2, 0, 2, 0])
    total = 9 + len(body)
    config = bytes([9, 2]) + total.to_bytes(2, "little")
    config += bytes([len(device.interfaces), 1, 0, 0x80, 50])
    return (dev + config + body).hex()


class UsbTestbed:
    """A mock /sys and udev with USB controllers, where devices are plugged and unplugged."""

    def __init__(self, buses: int = 2) -> None:
        self.tb = UMockdev.Testbed.new()
        self.root = self.tb.get_root_dir()
        self._hosts = 2
        for bus in range(1, buses + 1):
            self._add(
                f"P: /devices/pci0000:00/0000:00:04.0/usb{bus}\nE: SUBSYSTEM=usb\n"
                f"E: DEVTYPE=usb_device\nE: BUSNUM={bus:03d}\n"
                "A: authorized_default=1\nA: authorized=1\n"
                f"H: descriptors={descriptors_hex(HUB)}\n"
            )

    def _add(self, text: str) -> None:
        if not self.tb.add_from_string(text):
            raise RuntimeError(f"umockdev refused a device:\n{text}")

    def controller(self, bus: int) -> str:
        """The sys path of bus N's root hub."""
        return f"{PCI}/usb{bus}"

    def plug(self, device: UsbDevice, port: str, bus: int = 2) -> str:
        """Add a USB device at `bus`-`port` (e.g. 2, "1" -> 2-1); return its sys path.

        It arrives authorised or not as its controller's authorized_default says.
        """
        name = f"{bus}-{port}"
        parent = (
            self.controller(bus)
            if "." not in port
            else self.device_path(bus, port[: port.rindex(".")])
        )
        path = f"{parent}/{name}"
        authorized = self.read(self.controller(bus), "authorized_default").strip() or "1"
        lines = [
            f"P: {path[len('/sys') :]}",
            "E: SUBSYSTEM=usb",
            "E: DEVTYPE=usb_device",
            f"E: PRODUCT={int(device.vendor_id, 16):x}/{int(device.product_id, 16):x}/0",
            "E: TYPE=0/0/0",
            f"E: BUSNUM={bus:03d}",
            f"A: idVendor={device.vendor_id}",
            f"A: idProduct={device.product_id}",
            f"A: manufacturer={device.manufacturer}",
            f"A: product={device.product}",
            f"A: bDeviceClass={device.device_class:02x}",
            f"A: authorized={'0' if authorized == '0' else '1'}",
            f"H: descriptors={descriptors_hex(device)}",
        ]
        if device.serial is not None:
            lines.append("H: serial=" + (device.serial + b"\n").hex())
        self._add("\n".join(lines) + "\n")
        return path

    def device_path(self, bus: int, port: str) -> str:
        """Where a device at bus-port lives (hubs nest)."""
        parts = port.split(".")
        path = self.controller(bus)
        for i in range(1, len(parts) + 1):
            path += f"/{bus}-{'.'.join(parts[:i])}"
        return path

    def add_volumes(self, path: str, device: UsbDevice) -> list[str]:
        """The block devices appear (as after the kernel bound usb-storage); udev's view."""
        name = os.path.basename(path)
        self._hosts += 1
        host = self._hosts
        letter = chr(ord("a") + host % 26)
        disk = f"{path}/{name}:1.0/host{host}/target{host}:0:0/{host}:0:0:0/block/sd{letter}"
        made = []
        partitioned = any(v.partition for v in device.volumes)
        disk_props = ["E: ID_PART_TABLE_TYPE=dos"] if partitioned else []
        for volume in device.volumes:
            node = (
                disk
                if not volume.partition
                else f"{disk}/{os.path.basename(disk)}{volume.partition}"
            )
            if volume.partition and disk not in made:
                self._block(disk, "disk", disk_props, device)
                made.append(disk)
            self._block(
                node,
                "partition" if volume.partition else "disk",
                [
                    f"E: ID_FS_TYPE={volume.fs_type}",
                    f"E: ID_FS_UUID={volume.fs_uuid}",
                    "E: ID_FS_USAGE="
                    + (
                        "crypto" if volume.fs_type in ("crypto_LUKS", "BitLocker") else "filesystem"
                    ),
                ],
                device,
            )
            made.append(node)
        return made

    def _block(self, node: str, devtype: str, props: list[str], device: UsbDevice) -> None:
        serial = (device.serial or b"").decode("utf-8", "replace").replace("\n", "")
        self._add(
            "\n".join(
                [
                    f"P: {node[len('/sys') :]}",
                    "E: SUBSYSTEM=block",
                    f"E: DEVTYPE={devtype}",
                    f"E: DEVNAME=/dev/{os.path.basename(node)}",
                    "E: ID_BUS=usb",
                    f"E: ID_SERIAL_SHORT={serial}",
                    *props,
                    "A: ro=0",
                    "A: size=2097152",
                ]
            )
            + "\n"
        )

    def add_mapping(
        self, name: str, slave: str, devnode: str, numbers: tuple[int, int], fs_type: str
    ) -> str:
        """A dm-crypt mapping over `slave` (a block node path under a stick), as after unlocking:
        its node is `devnode` (a real loop device standing in for /dev/dm-N)."""
        path = f"/sys/devices/virtual/block/{name}"
        self._add(
            "\n".join(
                [
                    f"P: {path[len('/sys') :]}",
                    "E: SUBSYSTEM=block",
                    "E: DEVTYPE=disk",
                    f"E: DEVNAME={devnode}",
                    f"E: MAJOR={numbers[0]}",
                    f"E: MINOR={numbers[1]}",
                    f"E: ID_FS_TYPE={fs_type}",
                    "E: ID_FS_USAGE=filesystem",
                    f"E: DM_NAME=luks-{name}",
                    f"A: slaves/{os.path.basename(slave)}=",
                    "A: ro=0",
                ]
            )
            + "\n"
        )
        return path

    def unplug(self, path: str) -> None:
        """Remove a device and everything under it, with the kernel's remove events."""
        self.tb.uevent(path, "remove")
        self.tb.remove_device(path)

    def remove_block(self, node: str) -> None:
        """A block device goes away (e.g. after its USB device was switched off)."""
        self.tb.uevent(node, "remove")
        self.tb.remove_device(node)

    def read(self, path: str, attribute: str) -> str:
        """An attribute as the daemon left it in the testbed."""
        with open(f"{self.root}{path}/{attribute}") as f:
            return f.read()

    def set_attribute(self, path: str, attribute: str, value: str) -> None:
        """Change an attribute (as the kernel would)."""
        self.tb.set_attribute(path, attribute, value)
