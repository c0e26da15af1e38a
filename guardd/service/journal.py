"""journald's native protocol, without libsystemd: structured fields for IT's `journalctl`.

Each entry is one datagram to /run/systemd/journal/socket: "NAME=value\\n" per field, or, for
a value holding a newline, "NAME\\n", its length as 64-bit little-endian, the bytes, "\\n".
Under systemd (stderr is the journal stream JOURNAL_STREAM names, the socket is there),
guardd's log lines and a copy of every audit record go there; otherwise log lines go to
stderr and audit records to syslog as before. Sending never raises.

Fields of an audit record: MESSAGE (the one-line summary), PRIORITY (warning when blocked),
SYSLOG_IDENTIFIER=guardd, GUARDD_EVENT, GUARDD_SEQ, GUARDD_HASH, and GUARDD_<KEY> for each key
of the record's data (nested values as JSON), so `journalctl -u guardd GUARDD_VERDICT=blocked`
or `GUARDD_SERIAL=...` find them.
"""

from __future__ import annotations

import json
import logging
import os
import re
import socket
import struct
import sys
from collections.abc import Iterable, Mapping

from guardd.audit.record import AuditRecord, JsonValue
from guardd.audit.syslog_sink import SyslogSink, summarize

SOCKET = "/run/systemd/journal/socket"
MAX_VALUE = 4096  # a datagram must fit the socket's buffer: cut long values
MAX_FIELDS = 64
PRIORITY_WARNING = 4
PRIORITY_INFO = 6
FACILITY_AUTHPRIV = 10
_NAME_CHARS = re.compile(r"[^A-Z0-9_]")


def field_name(key: str) -> str:
    """A journal field name from any text: upper case letters, digits and '_', not leading '_'."""
    name = _NAME_CHARS.sub("_", key.upper()).lstrip("_")[:60]
    return name or "FIELD"


def encode(fields: Iterable[tuple[str, str]]) -> bytes:
    """The datagram for these fields (names must already be valid)."""
    out = bytearray()
    for name, value in fields:
        data = value.encode("utf-8", errors="replace")[:MAX_VALUE]
        if b"\n" in data:
            out += name.encode() + b"\n" + struct.pack("<Q", len(data)) + data + b"\n"
        else:
            out += name.encode() + b"=" + data + b"\n"
    return bytes(out)


class Journal:
    """A connection-less sender to journald."""

    def __init__(self, path: str = SOCKET, identifier: str = "guardd") -> None:
        """Prepare the socket; nothing is sent until `send`."""
        self._path = path
        self._identifier = identifier
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)

    def send(self, message: str, priority: int, fields: Mapping[str, str]) -> bool:
        """One entry; False if journald did not take it."""
        entry = [
            ("MESSAGE", message),
            ("PRIORITY", str(priority)),
            ("SYSLOG_IDENTIFIER", self._identifier),
        ]
        entry.extend(list(fields.items())[:MAX_FIELDS])
        try:
            self._sock.sendto(encode(entry), self._path)
        except OSError:
            return False
        return True

    def close(self) -> None:
        """Close the socket (the daemon keeps it for its whole life)."""
        self._sock.close()


def _text(value: JsonValue) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def record_fields(record: AuditRecord) -> dict[str, str]:
    """The structured fields of an audit record."""
    fields = {
        "SYSLOG_FACILITY": str(FACILITY_AUTHPRIV),
        "GUARDD_EVENT": record.event,
        "GUARDD_SEQ": str(record.seq),
        "GUARDD_HASH": record.hash,
    }
    for key, value in sorted(record.data.items()):
        name = "GUARDD_" + field_name(key)
        if name not in fields:
            fields[name] = _text(value)
    return fields


class JournalSink:
    """A copy of each audit record in the journal, with its fields."""

    def __init__(self, journal: Journal | None = None) -> None:
        """Send through `journal` (the system journal by default)."""
        self._journal = journal or Journal()

    def emit(self, record: AuditRecord) -> None:
        """Send the record; never raises (the audit file is the record of truth)."""
        blocked = record.data.get("verdict") == "blocked"
        priority = PRIORITY_WARNING if blocked else PRIORITY_INFO
        self._journal.send(summarize(record), priority, record_fields(record))


class JournalHandler(logging.Handler):
    """Python logging into the journal, with where in the code each line came from."""

    def __init__(self, journal: Journal | None = None) -> None:
        """Send through `journal` (the system journal by default)."""
        super().__init__()
        self._journal = journal or Journal()

    def emit(self, record: logging.LogRecord) -> None:
        """Send one log line."""
        try:
            message = self.format(record)
        except Exception:  # noqa: BLE001 - logging must never raise into the daemon
            message = str(record.msg)
        self._journal.send(
            message,
            _priority(record.levelno),
            {
                "CODE_FILE": record.pathname,
                "CODE_LINE": str(record.lineno),
                "CODE_FUNC": record.funcName,
                "LOGGER": record.name,
            },
        )


def _priority(level: int) -> int:
    if level >= logging.ERROR:
        return 3
    if level >= logging.WARNING:
        return PRIORITY_WARNING
    if level >= logging.INFO:
        return PRIORITY_INFO
    return 7


def under_systemd(
    environ: Mapping[str, str] | None = None, path: str = SOCKET, stderr_fd: int = 2
) -> bool:
    """Whether systemd connected this process's stderr to the journal (as systemd.exec(5)
    says to check: JOURNAL_STREAM names the device and inode of that stream). A shell in a
    desktop session inherits JOURNAL_STREAM too, so a guardd started by hand with its stderr
    on a terminal or a file does not match, and keeps logging there."""
    env = os.environ if environ is None else environ
    try:
        device, inode = (int(x) for x in env.get("JOURNAL_STREAM", "").split(":"))
        st = os.fstat(stderr_fd)
    except (ValueError, OSError):
        return False
    return (st.st_dev, st.st_ino) == (device, inode) and os.path.exists(path)


def setup_logging() -> None:
    """Log lines to the journal under systemd, else to stderr ("guardd: ...")."""
    if under_systemd():
        handler: logging.Handler = JournalHandler()
        handler.setFormatter(logging.Formatter("%(message)s"))
    else:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("guardd: %(message)s"))
    logging.basicConfig(level=logging.INFO, handlers=[handler])


def record_sink() -> JournalSink | SyslogSink:
    """Where audit records are copied: the journal with fields under systemd, else syslog."""
    return JournalSink() if under_systemd() else SyslogSink()
