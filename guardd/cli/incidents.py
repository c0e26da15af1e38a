"""`guard-admin incidents`: the viruses found on drives, as reported to IT through the exchange."""

from __future__ import annotations

import argparse
import time
from typing import Any

from guardd.cli.common import EXIT_OK, print_json, safe
from guardd.config import DEFAULT_CONFIG, load_config
from guardd.exchange.incidents import Incidents
from guardd.exchange.spool import Spool


def cmd_incidents(args: argparse.Namespace) -> int:
    """List incidents (daemon running or not): newest last; unreadable files named, not trusted."""
    config = load_config(args.config or DEFAULT_CONFIG)
    entries = Incidents(Spool(config.exchange), time.time, "").list()
    if args.json:
        print_json(
            [
                e.document if e.document is not None else {"file": e.name, "problem": e.problem}
                for e in entries
            ]
        )
        return EXIT_OK
    if not entries:
        print("No incidents: no virus has been found on a drive.")
    for entry in entries:
        if entry.document is None:
            print(f"{safe(entry.name)}: ignored ({entry.problem})")
        else:
            print_incident(entry.document)
    return EXIT_OK


def print_incident(doc: dict[str, Any]) -> None:
    """One incident, for a person (every field is untrusted: shown through safe())."""
    device = _mapping(doc.get("device"))
    when = doc.get("time")
    stamp = "?"
    if isinstance(when, (int, float)) and not isinstance(when, bool):
        stamp = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(when))
    label = f", '{safe(device.get('label'))}'" if device.get("label") else ""
    drive = f"drive {safe(device.get('id'), 16)} (serial {safe(device.get('serial'))}{label})"
    print(f"{safe(doc.get('id'))}  {stamp}  {drive}")
    infected = [_mapping(x) for x in _sequence(doc.get("infected"))]
    print(f"    {len(infected)} infected file{'s' if len(infected) != 1 else ''}:")
    for item in infected[:50]:
        print(f"      {safe(item.get('path'), 200)}  ({safe(item.get('signature'), 100)})")
    print(f"    action: {safe(doc.get('action'), 100)}")


def _mapping(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _sequence(value: object) -> list[object]:
    return value if isinstance(value, list) else []
