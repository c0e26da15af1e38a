"""What the tray knows at one moment, and the one word that sums it up."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from tray.views import Device, Folder, MyRequest


class Status(StrEnum):
    """The state the icon shows, worst first in `status_of`."""

    OFFLINE = "offline"  # guardd is not running (or cannot be reached)
    INFECTED = "infected"  # a virus was found on a drive
    SCANNING = "scanning"  # a drive is being checked
    BLOCKED = "blocked"  # a device or folder is blocked
    OK = "ok"  # all is well


@dataclass(frozen=True)
class TrayState:
    """A snapshot of guardd's answers (or of its absence)."""

    connected: bool
    devices: tuple[Device, ...] = ()
    folders: tuple[Folder, ...] | None = None  # None: this guardd has no cloud folders
    requests: tuple[MyRequest, ...] = ()
    problem: str = ""  # why guardd cannot be reached


OFFLINE = TrayState(connected=False)

BLOCKED_VERDICTS = frozenset({"blocked", "scan-failed"})


def blocked_devices(state: TrayState) -> tuple[Device, ...]:
    """Devices that cannot be used now (blocked, or not yet checked)."""
    return tuple(d for d in state.devices if d.verdict in BLOCKED_VERDICTS)


def blocked_folders(state: TrayState) -> tuple[Folder, ...]:
    """Cloud folders guardd blocked."""
    return tuple(f for f in state.folders or () if f.state == "blocked")


def status_of(state: TrayState) -> Status:
    """The icon's state: the worst thing happening now."""
    if not state.connected:
        return Status.OFFLINE
    verdicts = {d.verdict for d in state.devices}
    if "infected" in verdicts:
        return Status.INFECTED
    if "scanning" in verdicts:
        return Status.SCANNING
    if blocked_devices(state) or blocked_folders(state):
        return Status.BLOCKED
    return Status.OK
