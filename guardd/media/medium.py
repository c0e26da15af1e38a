"""A medium: one filesystem of an admitted drive, and where it is on its way to being exposed."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from guardd.media.mounts import Mount
from guardd.scanning import Progress, ScanReport


class MediumState(StrEnum):
    """Held read-only until scanned; then ready, infected, or not scanned (still held)."""

    HELD = "held"
    SCANNING = "scanning"
    READY = "ready"
    INFECTED = "infected"
    SCAN_FAILED = "scan-failed"


# Which state speaks for a drive with several filesystems: the worst one.
_PRECEDENCE = [
    MediumState.INFECTED,
    MediumState.SCAN_FAILED,
    MediumState.SCANNING,
    MediumState.HELD,
    MediumState.READY,
]


@dataclass
class Medium:
    """A filesystem guardd holds, scans and releases (the dm-crypt mapping of a LUKS stick, or
    a plain volume where the rules do not require encryption)."""

    usb_path: str
    name: str
    devnode: str
    major: int
    minor: int
    state: MediumState = MediumState.HELD
    reason: str = ""
    progress: Progress | None = None
    report: ScanReport | None = None
    held_mounts: dict[int, Mount] = field(default_factory=dict)  # by mount id, as it was
    mount: Mount | None = None  # the mount scanned or watched now
    mount_id: int = -1
    scanned_mount_id: int = -1  # the mount the last whole scan ran on
    rescans: int = 0  # changes on a ready drive still being scanned
    retrying: bool = False  # a clamd retry chain is running
    cancel: threading.Event | None = None
    watches: list[Any] = field(default_factory=list)
    preexisting: set[int] = field(default_factory=set)  # mounts that predate the hold
    generation: int = 0  # bumped when a scan is abandoned, so its late result is ignored

    def summary(self) -> dict[str, object]:
        """What the CLIs and the tray show for this filesystem."""
        shown: dict[str, object] = {
            "name": self.name,
            "state": self.state.value,
            "reason": self.reason,
        }
        if self.progress is not None:
            shown["files_done"] = self.progress.files_done
            shown["files_total"] = self.progress.files_total
        if self.report is not None:
            report = self.report.to_json()
            shown["scan"] = {k: report[k] for k in ("verdict", "files_scanned", "infected")}
        return shown


def worst(media: list[Medium]) -> Medium:
    """The medium whose state speaks for the whole drive."""
    return min(media, key=lambda m: _PRECEDENCE.index(m.state))


def held_reason(label: str) -> str:
    """What staff read while the drive waits to be opened and scanned."""
    named = f"'{label}'" if label else "this drive"
    return f"held read-only: {named} will be scanned for viruses as soon as it is opened"


def progress_reason(progress: Progress) -> str:
    """'scanning: 1,234 of 5,000 files'."""
    return f"scanning: {progress.files_done:,} of {progress.files_total:,} files"


def ready_reason(report: ScanReport) -> str:
    """'ready: scanned for viruses, clean (2 files; 1 link not followed)'."""
    files = f"{report.files_scanned:,} file{'s' if report.files_scanned != 1 else ''}"
    skipped = len(report.skipped) + report.omitted
    if skipped:
        kinds = "link or special file" if skipped == 1 else "links or special files"
        files += f"; {skipped:,} {kinds} not followed"
    return f"ready: scanned for viruses, clean ({files})"
