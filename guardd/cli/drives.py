"""`guard-admin drives enroll/list/remove`: the school's drives, in the rules files.

Enrolling appends a [[drive]] table (to the rules file, or to a file of its own in a rules
folder); removing cuts a drive's table out of the file it is in. Every change is checked as a
whole rule set before it is written (atomically), and the running daemon is asked to reload.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from pathlib import Path

from guardd.cli.common import EXIT_OK, print_json, safe
from guardd.config import DEFAULT_CONFIG, DaemonConfig, load_config
from guardd.errors import ErrorCode, GuarddError
from guardd.ipc.client import Client, resolve_socket
from guardd.ipc.protocol import Op
from rules import Drive, RulesError, RuleSet, load_rules, parse_rules

MANAGED_FILE = "90-enrolled.toml"  # in a rules folder: the drives guard-admin enrolled


def _config(args: argparse.Namespace) -> DaemonConfig:
    return load_config(args.config or DEFAULT_CONFIG)


def _target(config: DaemonConfig) -> Path:
    return config.rules / MANAGED_FILE if config.rules.is_dir() else config.rules


def _table(args: argparse.Namespace) -> str:
    lines = ["", "[[drive]]"]
    for key in ("serial", "vendor_id", "product_id", "label"):
        value = getattr(args, key)
        if value is not None:
            lines.append(f"{key} = {json.dumps(value, ensure_ascii=False)}")
    if args.volume_uuid:
        lines.append(f"volume_uuids = {json.dumps(args.volume_uuid)}")
    return "\n".join(lines) + "\n"


def cmd_enroll(args: argparse.Namespace) -> int:
    """Enroll a drive by serial, vendor id and product id (and its volume, if given)."""
    config = _config(args)
    target = _target(config)
    before = target.read_text(encoding="utf-8") if target.exists() else ""
    _replace(config, target, before, before.rstrip("\n") + "\n" + _table(args))
    print(f"enrolled {safe(args.serial)} ({args.vendor_id}:{args.product_id}) in {target}")
    return _reload(args, config)


def cmd_remove(args: argparse.Namespace) -> int:
    """Remove an enrolled drive (by serial, or by rule id) from the file it is in."""
    config = _config(args)
    drive = _find(config, args.drive)
    path = Path(drive.source)
    before = path.read_text(encoding="utf-8")
    lines = before.splitlines(keepends=True)
    start = drive.line - 1
    end = next(
        (i for i in range(start + 1, len(lines)) if lines[i].lstrip().startswith("[")), len(lines)
    )
    _replace(config, path, before, "".join(lines[:start] + lines[end:]))
    print(f"removed {safe(drive.serial)} ({drive.label}) from {path}")
    return _reload(args, config)


def cmd_list(args: argparse.Namespace) -> int:
    """Every enrolled drive, with where it is enrolled."""
    drives = _rules(_config(args)).drives
    if args.json:
        print_json([_drive_json(d) for d in drives])
        return EXIT_OK
    if not drives:
        print("No drives are enrolled: every USB drive is blocked.")
    for d in drives:
        where = f"{d.source}:{d.line}"
        print(f"{safe(d.label)}: serial {safe(d.serial)}, {d.vendor_id}:{d.product_id}  ({where})")
    return EXIT_OK


def _drive_json(d: Drive) -> dict[str, object]:
    return {
        "id": d.rule_id,
        "serial": d.serial,
        "vendor_id": d.vendor_id,
        "product_id": d.product_id,
        "label": d.label,
        "volume_uuids": sorted(d.volume_uuids),
        "source": f"{d.source}:{d.line}",
    }


def _rules(config: DaemonConfig) -> RuleSet:
    try:
        return load_rules(config.rules)
    except RulesError as e:
        raise GuarddError(ErrorCode.INVALID_RULES, f"the rules are broken:\n{e}") from None


def _find(config: DaemonConfig, wanted: str) -> Drive:
    matches = [d for d in _rules(config).drives if wanted in (d.serial, d.rule_id)]
    if not matches:
        raise GuarddError(ErrorCode.NOT_FOUND, f"no enrolled drive has the serial or id {wanted!r}")
    if len(matches) > 1:
        raise GuarddError(
            ErrorCode.INVALID_ARGUMENT,
            f"{len(matches)} drives have the serial {wanted!r}: give the rule id instead",
        )
    return matches[0]


def _replace(config: DaemonConfig, path: Path, before: str, after: str) -> None:
    """Write `after` atomically if the file and the whole rule set stay valid; else keep
    `before` and say what is wrong."""
    try:
        parse_rules(after, str(path))
    except RulesError as e:
        raise GuarddError(ErrorCode.INVALID_ARGUMENT, str(e)) from None
    _write(path, after)
    try:
        load_rules(config.rules)
    except RulesError as e:
        _write(path, before)
        raise GuarddError(ErrorCode.INVALID_ARGUMENT, str(e)) from None


def _write(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _reload(args: argparse.Namespace, config: DaemonConfig) -> int:
    try:
        Client(resolve_socket(args.socket, config.socket)).call(Op.RELOAD)
    except GuarddError:
        print("guardd is not running: the change applies when it starts")
        return EXIT_OK
    print("guardd reloaded its rules")
    return EXIT_OK


def add_parsers(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """guard-admin drives ..."""
    drives = commands.add_parser("drives", help="the school's enrolled drives")
    sub = drives.add_subparsers(dest="drives_command", required=True, metavar="COMMAND")
    enroll = sub.add_parser("enroll", help="enroll a drive")
    enroll.add_argument("--serial", required=True)
    enroll.add_argument("--vendor-id", dest="vendor_id", required=True)
    enroll.add_argument("--product-id", dest="product_id", required=True)
    enroll.add_argument("--label", help="a name staff will recognise")
    enroll.add_argument("--volume-uuid", action="append", help="its LUKS volume's UUID")
    enroll.set_defaults(func=cmd_enroll)
    listing = sub.add_parser("list", help="every enrolled drive")
    listing.add_argument("--json", action="store_true", help="print JSON")
    listing.set_defaults(func=cmd_list)
    remove = sub.add_parser("remove", help="remove an enrolled drive")
    remove.add_argument("drive", metavar="SERIAL|ID")
    remove.set_defaults(func=cmd_remove)
