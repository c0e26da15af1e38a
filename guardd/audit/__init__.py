"""guardd's audit trail: hash-chained JSON lines, their verifier and the syslog copy."""

from guardd.audit.head import head_path_for
from guardd.audit.log import (
    EVENT_RESUMED_AFTER_DAMAGE,
    EVENT_RESUMED_AFTER_TRUNCATION,
    AuditError,
    AuditLog,
    RecordSink,
)
from guardd.audit.record import GENESIS_HASH, AuditRecord, JsonValue
from guardd.audit.syslog_sink import SyslogSink
from guardd.audit.verify import VerifyResult, verify

__all__ = [
    "EVENT_RESUMED_AFTER_DAMAGE",
    "EVENT_RESUMED_AFTER_TRUNCATION",
    "GENESIS_HASH",
    "AuditError",
    "AuditLog",
    "AuditRecord",
    "JsonValue",
    "RecordSink",
    "SyslogSink",
    "VerifyResult",
    "head_path_for",
    "verify",
]
