"""`guard-admin incidents`: the viruses found on drives, as reported to IT through the exchange.

Every incident document is untrusted (the exchange may be a share other machines write to):
a field of the wrong type or out of range is shown as "?", never a traceback.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from guardd.cli.common import EXIT_FAILED, EXIT_OK, print_json, safe
from guardd.config import DEFAULT_CONFIG, load_config
from guardd.exchange.incidents import Incidents
from guardd.exchange.spool import Spool, SpoolError

MAX_FILES_SHOWN = 50


def cmd_incidents(args: argparse.Namespace) -> int:
    """List incidents (daemon running or not): newest last; unreadable files named, not trusted."""
    config = load_config(args.config or DEFAULT_CONFIG)
    spool = Spool(config.exchange)
    try:
        spool.check_root()  # a missing exchange is not "no incidents": the share may be down
        entries = Incidents(spool, time.time, "").list()
    except SpoolError as e:
        print(f"guard-admin: {e}", file=sys.stderr)
        return EXIT_FAILED
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
            print(f"{safe(entry.name)}: ignored ({safe(entry.problem, 200)})")
        else:
            print_incident(entry.document)
    return EXIT_OK


def print_incident(doc: dict[str, Any]) -> None:
    """One incident, for a person (every field is untrusted: shown through safe())."""
    device = _mapping(doc.get("device"))
    label = _scalar(device.get("label"))
    shown_label = f", '{safe(label)}'" if label not in (None, "") else ""
    serial = safe(_scalar(device.get("serial")))
    drive = f"drive {safe(_scalar(device.get('id')), 16)} (serial {serial}{shown_label})"
    machine = safe(_scalar(doc.get("machine")))
    print(f"{safe(_scalar(doc.get('id')))}  {_stamp(doc.get('time'))}  {drive}")
    print(f"    machine: {machine}")
    infected = [_mapping(x) for x in _sequence(doc.get("infected"))]
    print(f"    {len(infected)} infected file{'s' if len(infected) != 1 else ''}:")
    for item in infected[:MAX_FILES_SHOWN]:
        path, signature = _scalar(item.get("path")), _scalar(item.get("signature"))
        print(f"      {safe(path, 200)}  ({safe(signature, 100)})")
    if len(infected) > MAX_FILES_SHOWN:
        print(f"      ... and {len(infected) - MAX_FILES_SHOWN} more")
    print(f"    action: {safe(_scalar(doc.get('action')), 100)}")


def _stamp(when: object) -> str:
    """A UTC time for people, or "?" for anything that is not a time a clock can show."""
    if isinstance(when, bool) or not isinstance(when, (int, float)):
        return "?"
    try:
        return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(when))
    except (OverflowError, OSError, ValueError):  # inf, nan, 1e400, years out of range
        return "?"


def _scalar(value: object) -> object:
    """A value worth showing as text: a string or a number; "?" for lists and objects."""
    if value is None or isinstance(value, (str, int, float)):
        return value
    return "?"


def _mapping(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _sequence(value: object) -> list[object]:
    return value if isinstance(value, list) else []
