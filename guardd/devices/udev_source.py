"""Device events from the kernel and from udev, through pyudev.

USB authorisation is decided from the kernel's own uevent (and sysfs), as USBGuard does: it
arrives tens of milliseconds before udev's. Block devices are judged from udev's event, which
carries blkid's findings (ID_FS_TYPE, ID_FS_UUID).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pyudev

MAX_PROPERTY_CHARS = 256
RECEIVE_BUFFER_BYTES = 32 * 1024 * 1024


@dataclass(frozen=True)
class UsbEvent:
    """A USB device appeared or went away (interfaces and other actions are not reported).

    `received` is time.perf_counter() when guardd read it off the socket.
    """

    action: str
    sys_path: str
    received: float = 0.0


@dataclass(frozen=True)
class BlockEvent:
    """A disk or partition appeared, changed or went away, with udev's blkid results."""

    action: str
    sys_path: str
    name: str
    fs_type: str
    fs_uuid: str
    has_partition_table: bool
    devnode: str = ""
    major: int = -1
    minor: int = -1


@dataclass(frozen=True)
class Resync:
    """Events were lost (the socket overflowed): what is present must be enumerated again."""

    reason: str


Event = UsbEvent | BlockEvent | Resync


def _prop(device: pyudev.Device, key: str) -> str:
    value = device.properties.get(key, "")
    return str(value)[:MAX_PROPERTY_CHARS]


def block_event(action: str, device: pyudev.Device) -> BlockEvent:
    """Turn a udev block device into an event; odd values stay strings the policy can refuse."""
    return BlockEvent(
        action=action,
        sys_path=str(device.sys_path),
        name=str(device.sys_name)[:MAX_PROPERTY_CHARS],
        fs_type=_prop(device, "ID_FS_TYPE"),
        fs_uuid=_prop(device, "ID_FS_UUID"),
        has_partition_table=bool(_prop(device, "ID_PART_TABLE_TYPE")),
        devnode=_prop(device, "DEVNAME"),
        major=_number(_prop(device, "MAJOR")),
        minor=_number(_prop(device, "MINOR")),
    )


def _number(text: str) -> int:
    return int(text) if text.isdigit() and len(text) < 10 else -1


def to_event(device: pyudev.Device, from_kernel: bool) -> Event | None:
    """The event guardd acts on, or None for everything it ignores."""
    action = str(device.action or "")
    subsystem = device.subsystem
    if from_kernel and subsystem == "usb" and device.device_type == "usb_device":
        if action in ("add", "remove"):
            return UsbEvent(action, str(device.sys_path), time.perf_counter())
        return None
    if not from_kernel and subsystem == "block" and action in ("add", "change", "remove"):
        return block_event(action, device)
    return None


class UdevSource:
    """Netlink monitors (kernel: USB; udev: block) and the enumeration of what is present."""

    def __init__(self, context: pyudev.Context | None = None) -> None:
        self._context = context or pyudev.Context()
        self._kernel = pyudev.Monitor.from_netlink(self._context, source="kernel")
        self._udev = pyudev.Monitor.from_netlink(self._context, source="udev")
        self._udev.filter_by("block")

    def start(self) -> None:
        """Bind the sockets; call before enumerating so nothing falls between the two."""
        for monitor in (self._kernel, self._udev):
            # A storm of plugs must not overflow the socket and lose an 'add'; without root
            # the default buffer still works.
            with contextlib.suppress(OSError):
                monitor.set_receive_buffer_size(RECEIVE_BUFFER_BYTES)
        self._kernel.start()
        self._udev.start()

    def filenos(self) -> tuple[int, int]:
        """The file descriptors to watch for readability."""
        return self._kernel.fileno(), self._udev.fileno()

    def drain(self) -> Iterator[Event]:
        """Every event waiting on either socket, without blocking."""
        for monitor, from_kernel in ((self._kernel, True), (self._udev, False)):
            while True:
                try:
                    device = monitor.poll(timeout=0)
                except OSError as e:
                    yield Resync(f"event socket error: {e.strerror or e}")
                    break
                if device is None:
                    break
                event = to_event(device, from_kernel)
                if event is not None:
                    yield event

    def present_usb(self) -> list[str]:
        """Sys paths of every USB device present now, root hubs included, parents first."""
        found = self._context.list_devices(subsystem="usb", DEVTYPE="usb_device")
        return sorted((str(d.sys_path) for d in found), key=lambda p: (p.count("/"), p))

    def present_block(self) -> list[BlockEvent]:
        """Every block device present now, as 'add' events."""
        return [block_event("add", d) for d in self._context.list_devices(subsystem="block")]
