"""Incidents: a virus found on a drive, reported to IT at once through the exchange.

School policy: a virus found must be reported to IT even if it was cleaned. guardd never
deletes the file; it writes an incident document IT lists with `guard-admin incidents`.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from guardd.exchange.spool import Entry, Spool, new_id

KIND = "incidents"


class Incidents:
    """Writes and lists incident documents in the exchange spool."""

    def __init__(self, spool: Spool, clock: Callable[[], float], machine: str) -> None:
        self._spool = spool
        self._clock = clock
        self._machine = machine

    def report(
        self, device: Mapping[str, Any], volume: str, scan: Mapping[str, Any], action: str
    ) -> str:
        """Write one incident; return its id."""
        now = self._clock()
        incident_id = new_id("inc", now)
        self._spool.write(
            KIND,
            incident_id,
            {
                "id": incident_id,
                "version": 1,
                "time": now,
                "machine": self._machine,
                "device": {k: device.get(k) for k in _DEVICE_FIELDS},
                "volume": volume,
                "infected": list(scan.get("infected", [])),
                "signature_db": scan.get("db_version"),
                "action": action,
            },
        )
        return incident_id

    def list(self) -> list[Entry]:
        """Every incident document, oldest first (ids sort by time)."""
        return list(self._spool.read_all(KIND))


_DEVICE_FIELDS = ("id", "serial", "vendor_id", "product_id", "label", "manufacturer", "product")


def machine_name() -> str:
    """This machine's id (/etc/machine-id) or host name, for incident documents."""
    try:
        return Path("/etc/machine-id").read_text().strip()[:64] or _hostname()
    except OSError:
        return _hostname()


def _hostname() -> str:
    return socket.gethostname()
