"""Refuse to run beside USBGuard: both write the kernel's `authorized` switches, and the last
writer wins, so a device one of them blocked could be let in by the other.

GNOME's USB protection (gsd-usb-protection) does not write `authorized` itself: it drives
USBGuard over D-Bus, so it matters only when usbguard-daemon runs, which is what is checked.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path

from guardd.audit import AuditLog
from guardd.errors import ErrorCode, GuarddError

DAEMON = "usbguard-daemon"


@dataclass(frozen=True)
class Conflict:
    """Another USB authorisation daemon found running."""

    name: str
    pid: int

    def message(self) -> str:
        """One line for the person reading the journal."""
        return (
            f"refusing to start: USBGuard ({self.name}, pid {self.pid}) is running, and the "
            "two would fight over which USB devices are allowed; stop it first "
            "(systemctl disable --now usbguard), or uninstall it"
        )


def _names(pid_dir: Path) -> set[str]:
    """The process's short name and the base name of its program, as far as readable."""
    names = set()
    with contextlib.suppress(OSError):
        names.add((pid_dir / "comm").read_text(errors="replace").strip())
    try:
        argv0 = (pid_dir / "cmdline").read_bytes().split(b"\0", 1)[0]
    except OSError:
        argv0 = b""
    if argv0:
        names.add(os.path.basename(argv0.decode(errors="replace")))
    return names


def find_usbguard(proc: Path = Path("/proc")) -> Conflict | None:
    """A running usbguard-daemon, if any."""
    try:
        entries = sorted(proc.iterdir(), key=lambda p: p.name)
    except OSError:
        return None
    for entry in entries:
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        if DAEMON in _names(entry):
            return Conflict(DAEMON, int(entry.name))
    return None


def refuse_beside_usbguard(audit: AuditLog, proc: Path = Path("/proc")) -> None:
    """Raise GuarddError (guardd exits 2 with one line) when USBGuard runs; the refusal is in
    the audit trail too."""
    conflict = find_usbguard(proc)
    if conflict is None:
        return
    audit.append("daemon.refused", {"reason": "usbguard-running", "pid": conflict.pid})
    raise GuarddError(ErrorCode.UNAVAILABLE, conflict.message())
