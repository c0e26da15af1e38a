"""A copy of each audit record for syslog, so decisions also reach the journal and any log host.

The audit file stays the record of truth; this is a one-line, human-readable summary. It is
a module of its own so journald structured fields can be added here later without touching
the audit log.
"""

from __future__ import annotations

import json
import re
import syslog

from guardd.audit.record import AuditRecord, JsonValue

_MAX_MESSAGE = 1024  # syslog relays truncate long messages anyway; cut them where we choose
_BARE_WORD = re.compile(r"[A-Za-z0-9_.:/-]{1,128}")


class SyslogSink:
    """Sends a one-line summary of each record to syslog (facility AUTHPRIV).

    Records whose data has verdict "blocked" are logged at WARNING, the rest at INFO.
    `emit` never raises: without a syslog daemon or journal the summary is simply lost.
    """

    def __init__(self, ident: str = "guardd", facility: int = syslog.LOG_AUTHPRIV) -> None:
        """Prepare the sink; syslog itself is opened on the first record."""
        self._ident = ident
        self._facility = facility
        self._opened = False

    def emit(self, record: AuditRecord) -> None:
        """Send the summary of `record` to syslog."""
        priority = (
            syslog.LOG_WARNING if record.data.get("verdict") == "blocked" else syslog.LOG_INFO
        )
        try:
            if not self._opened:
                syslog.openlog(self._ident, syslog.LOG_PID, self._facility)
                self._opened = True
            syslog.syslog(self._facility | priority, summarize(record))
        except (OSError, ValueError, TypeError):
            return  # syslog must never cost the daemon a decision


def summarize(record: AuditRecord) -> str:
    """The record as one safe line: seq, event, then the data as key=value pairs.

    Values are JSON-encoded with ASCII escapes, so hostile text (newlines, control characters,
    NUL, which syslog() rejects) cannot forge a second log line or break the call.
    """
    parts = [f"seq={record.seq}", f"event={_value(record.event)}"]
    parts.extend(f"{_value(key)}={_value(value)}" for key, value in sorted(record.data.items()))
    parts.append(f"hash={record.hash[:16]}")
    message = " ".join(parts)
    if len(message) > _MAX_MESSAGE:
        message = message[: _MAX_MESSAGE - 3] + "..."
    return message


def _value(value: JsonValue) -> str:
    if isinstance(value, str) and _BARE_WORD.fullmatch(value):
        return value  # plain words stay unquoted: verdict=blocked, not verdict="blocked"
    try:
        return json.dumps(value, ensure_ascii=True, sort_keys=True, separators=(",", ":"))
    except (TypeError, ValueError):
        return '"<unencodable>"'
