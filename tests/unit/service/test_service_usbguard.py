"""Finding a running usbguard-daemon in a /proc tree, and refusing to start beside it."""

from __future__ import annotations

from pathlib import Path

import pytest

from guardd.audit import AuditLog
from guardd.errors import GuarddError
from guardd.service.usbguard import find_usbguard, refuse_beside_usbguard


def process(proc: Path, pid: int, comm: str, argv0: bytes) -> None:
    folder = proc / str(pid)
    folder.mkdir(parents=True)
    (folder / "comm").write_text(comm + "\n")
    (folder / "cmdline").write_bytes(argv0 + b"\0-f\0")


def test_found_by_name(tmp_path: Path) -> None:
    process(tmp_path, 1, "systemd", b"/sbin/init")
    process(tmp_path, 812, "usbguard-daemon", b"/usr/sbin/usbguard-daemon")
    (tmp_path / "self").mkdir()
    conflict = find_usbguard(tmp_path)
    assert conflict is not None
    assert conflict.pid == 812
    assert "USBGuard (usbguard-daemon, pid 812)" in conflict.message()


def test_found_by_program_when_renamed(tmp_path: Path) -> None:
    process(tmp_path, 40, "worker", b"/usr/sbin/usbguard-daemon")
    assert find_usbguard(tmp_path) is not None


def test_other_usbguard_tools_are_not_the_daemon(tmp_path: Path) -> None:
    process(tmp_path, 41, "usbguard", b"/usr/bin/usbguard")
    process(tmp_path, 42, "usbguard-dbus", b"/usr/sbin/usbguard-dbus")
    process(tmp_path, 43, "gsd-usb-protect", b"/usr/libexec/gsd-usb-protection")
    assert find_usbguard(tmp_path) is None


def test_unreadable_proc_is_no_conflict(tmp_path: Path) -> None:
    assert find_usbguard(tmp_path / "missing") is None


def test_refusal_is_audited(tmp_path: Path) -> None:
    proc = tmp_path / "proc"
    process(proc, 812, "usbguard-daemon", b"usbguard-daemon")
    with (
        AuditLog.open(tmp_path / "audit.jsonl") as audit,
        pytest.raises(GuarddError, match="refusing to start: USBGuard"),
    ):
        refuse_beside_usbguard(audit, proc)
    lines = (tmp_path / "audit.jsonl").read_text()
    assert '"daemon.refused"' in lines
    assert '"usbguard-running"' in lines


def test_no_usbguard_no_record(tmp_path: Path) -> None:
    with AuditLog.open(tmp_path / "audit.jsonl") as audit:
        refuse_beside_usbguard(audit, tmp_path / "empty")
    assert "daemon.refused" not in (tmp_path / "audit.jsonl").read_text()
