"""journald's native protocol: what a real datagram socket receives, hostile values included."""

from __future__ import annotations

import logging
import os
import socket
import struct
from collections.abc import Iterator
from pathlib import Path

import pytest

from guardd.audit import AuditRecord, JsonValue
from guardd.audit.syslog_sink import SyslogSink
from guardd.service import journal


def decode(datagram: bytes) -> dict[str, bytes]:
    """journald's side of the protocol (the reference for what `encode` must produce)."""
    fields: dict[str, bytes] = {}
    rest = datagram
    while rest:
        line, sep, tail = rest.partition(b"\n")
        assert sep, "every field ends in a newline"
        if b"=" in line:
            name, _, value = line.partition(b"=")
            fields[name.decode()] = value
            rest = tail
        else:
            (size,) = struct.unpack("<Q", tail[:8])
            fields[line.decode()] = tail[8 : 8 + size]
            assert tail[8 + size : 9 + size] == b"\n"
            rest = tail[9 + size :]
    return fields


@pytest.fixture
def journald(tmp_path: Path) -> Iterator[tuple[socket.socket, journal.Journal]]:
    path = str(tmp_path / "journal.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(2)
    sender = journal.Journal(path)
    yield sock, sender
    sender.close()
    sock.close()


def record(data: dict[str, JsonValue]) -> AuditRecord:
    return AuditRecord(
        seq=12,
        ts="2026-01-01T00:00:00.000000Z",
        event="device.decision",
        data=data,
        prev="0" * 64,
        hash="cd" * 32,
    )


def test_audit_record_fields(journald: tuple[socket.socket, journal.Journal]) -> None:
    sock, sender = journald
    sink = journal.JournalSink(sender)
    sink.emit(record({"serial": "SCHOOL-1", "verdict": "blocked", "volumes": ["sdb1"]}))
    fields = decode(sock.recv(65536))
    assert fields["GUARDD_EVENT"] == b"device.decision"
    assert fields["GUARDD_SEQ"] == b"12"
    assert fields["GUARDD_SERIAL"] == b"SCHOOL-1"
    assert fields["GUARDD_VERDICT"] == b"blocked"
    assert fields["GUARDD_VOLUMES"] == b'["sdb1"]'
    assert fields["PRIORITY"] == b"4"  # blocked: a warning
    assert fields["SYSLOG_IDENTIFIER"] == b"guardd"
    assert fields["SYSLOG_FACILITY"] == b"10"
    assert b"event=device.decision" in fields["MESSAGE"]


def test_hostile_values_cannot_forge_fields(
    journald: tuple[socket.socket, journal.Journal],
) -> None:
    sock, sender = journald
    forged = "x\nGUARDD_VERDICT=allowed\nPRIORITY=0"
    journal.JournalSink(sender).emit(record({"serial": forged, "verdict": "blocked", "_x y": 1}))
    fields = decode(sock.recv(65536))
    assert fields["GUARDD_SERIAL"] == forged.encode()  # carried whole, length-prefixed
    assert fields["GUARDD_VERDICT"] == b"blocked"
    assert fields["PRIORITY"] == b"4"
    assert fields["GUARDD_X_Y"] == b"1"  # names are made safe


def test_long_values_are_cut(journald: tuple[socket.socket, journal.Journal]) -> None:
    sock, sender = journald
    journal.JournalSink(sender).emit(record({"reason": "r" * 100_000}))
    assert len(decode(sock.recv(65536))["GUARDD_REASON"]) == journal.MAX_VALUE


def test_log_lines_carry_their_source(journald: tuple[socket.socket, journal.Journal]) -> None:
    sock, sender = journald
    logger = logging.getLogger("guardd-journal-test")
    handler = journal.JournalHandler(sender)
    logger.addHandler(handler)
    try:
        logger.error("clamd does not answer")
    finally:
        logger.removeHandler(handler)
    fields = decode(sock.recv(65536))
    assert fields["MESSAGE"] == b"clamd does not answer"
    assert fields["PRIORITY"] == b"3"
    assert fields["CODE_FUNC"] == b"test_log_lines_carry_their_source"


def test_no_journal_is_not_an_error(tmp_path: Path) -> None:
    sender = journal.Journal(str(tmp_path / "none.sock"))
    try:
        assert not sender.send("x", 6, {})
        journal.JournalSink(sender).emit(record({}))  # never raises
    finally:
        sender.close()


def test_under_systemd_only_when_stderr_is_the_journal_stream(tmp_path: Path) -> None:
    path = tmp_path / "journal.sock"
    path.touch()
    with (tmp_path / "stream").open("w") as stream, (tmp_path / "other").open("w") as other:
        st = os.fstat(stream.fileno())
        env = {"JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino}", "INVOCATION_ID": "abc"}
        assert journal.under_systemd(env, str(path), stream.fileno())
        # A shell that inherited JOURNAL_STREAM, its stderr elsewhere: not under systemd.
        assert not journal.under_systemd(env, str(path), other.fileno())
        assert not journal.under_systemd(env, str(tmp_path / "missing"), stream.fileno())
        assert not journal.under_systemd({"INVOCATION_ID": "abc"}, str(path), stream.fileno())
        assert not journal.under_systemd({"JOURNAL_STREAM": "x"}, str(path), stream.fileno())


def test_outside_systemd_records_go_to_syslog(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("INVOCATION_ID", raising=False)
    monkeypatch.delenv("JOURNAL_STREAM", raising=False)
    assert isinstance(journal.record_sink(), SyslogSink)


@pytest.mark.parametrize(
    ("key", "name"),
    [("verdict", "VERDICT"), ("fs-type", "FS_TYPE"), ("__", "FIELD"), ("é", "FIELD")],
)
def test_field_names(key: str, name: str) -> None:
    assert journal.field_name(key) == name
