"""SyslogSink: one safe summary line per record, never an exception."""

from __future__ import annotations

import syslog
from pathlib import Path

import pytest

from guardd.audit import AuditLog, AuditRecord, JsonValue, SyslogSink
from guardd.audit.syslog_sink import summarize


def record(data: dict[str, JsonValue], event: str = "device.decision") -> AuditRecord:
    return AuditRecord(
        seq=7,
        ts="2024-01-01T00:00:00.000000Z",
        event=event,
        data=data,
        prev="0" * 64,
        hash="ab" * 32,
    )


class FakeSyslog:
    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.opened: list[tuple[str, int, int]] = []
        self.messages: list[tuple[int, str]] = []
        monkeypatch.setattr(syslog, "openlog", self.openlog)
        monkeypatch.setattr(syslog, "syslog", self.syslog)

    def openlog(self, ident: str, logoption: int, facility: int) -> None:
        self.opened.append((ident, logoption, facility))

    def syslog(self, priority: int, message: str) -> None:
        if "\x00" in message:
            raise ValueError("embedded null character")  # what the real syslog() does
        self.messages.append((priority, message))


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> FakeSyslog:
    return FakeSyslog(monkeypatch)


def test_blocked_is_a_warning_on_authpriv(fake: FakeSyslog) -> None:
    SyslogSink().emit(record({"verdict": "blocked", "device": "1-2"}))
    assert fake.opened == [("guardd", syslog.LOG_PID, syslog.LOG_AUTHPRIV)]
    priority, message = fake.messages[0]
    assert priority == syslog.LOG_AUTHPRIV | syslog.LOG_WARNING
    assert message == "seq=7 event=device.decision device=1-2 verdict=blocked hash=abababababababab"


@pytest.mark.parametrize("data", [{"verdict": "allowed"}, {}, {"verdict": ["blocked"]}])
def test_other_records_are_info(fake: FakeSyslog, data: dict[str, JsonValue]) -> None:
    SyslogSink().emit(record(data))
    assert fake.messages[0][0] == syslog.LOG_AUTHPRIV | syslog.LOG_INFO


def test_syslog_is_opened_once(fake: FakeSyslog) -> None:
    sink = SyslogSink()
    sink.emit(record({}))
    sink.emit(record({}))
    assert len(fake.opened) == 1
    assert len(fake.messages) == 2


def test_hostile_values_stay_on_one_safe_line(fake: FakeSyslog) -> None:
    hostile = 'evil\n<13>Jan  1 00:00:00 host forged: line\x00"\udcff\u2028'
    SyslogSink().emit(record({"serial": hostile, hostile: 1}))
    message = fake.messages[0][1]
    assert message.isascii()
    assert message.isprintable()
    assert "\\n<13>" in message


def test_long_messages_are_cut(fake: FakeSyslog) -> None:
    SyslogSink().emit(record({"serial": "x" * 10_000}))
    message = fake.messages[0][1]
    assert len(message) == 1024
    assert message.endswith("...")


def test_nested_values_are_compact_json() -> None:
    message = summarize(record({"interfaces": [{"cls": 8}], "ok": True, "n": None}))
    assert 'interfaces=[{"cls":8}]' in message
    assert "ok=true" in message
    assert "n=null" in message


@pytest.mark.parametrize("error", [OSError("no journal"), ValueError("bad"), TypeError("bad")])
def test_syslog_failures_are_swallowed(monkeypatch: pytest.MonkeyPatch, error: Exception) -> None:
    def broken(*_args: object) -> None:
        raise error

    monkeypatch.setattr(syslog, "openlog", broken)
    monkeypatch.setattr(syslog, "syslog", broken)
    SyslogSink().emit(record({"verdict": "blocked"}))


def test_audit_log_feeds_the_sink(fake: FakeSyslog, tmp_path: Path) -> None:
    with AuditLog.open(tmp_path / "audit.log", sink=SyslogSink()) as log:
        log.append("device.decision", {"verdict": "blocked"})
        log.append("device.removed", {"device": "1-2"})
    (first_priority, first), (_, second) = fake.messages
    assert first_priority == syslog.LOG_AUTHPRIV | syslog.LOG_WARNING
    assert first.startswith("seq=1 event=device.decision verdict=blocked hash=")
    assert second.startswith("seq=2 event=device.removed device=1-2 hash=")
