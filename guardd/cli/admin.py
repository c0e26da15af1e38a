"""guard-admin: IT's tool: devices on any machine's guardd, rules checks, audit verification."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

from guardd.audit import verify
from guardd.cli.cloud import folders_list, print_folders
from guardd.cli.common import (
    EXIT_FAILED,
    EXIT_OK,
    devices_list,
    print_devices,
    print_json,
    run,
)
from guardd.cli.decisions import add_parsers as add_decision_parsers
from guardd.cli.drives import add_parsers as add_drive_parsers
from guardd.cli.incidents import cmd_incidents
from guardd.cli.scan import cmd_scan
from guardd.config import DEFAULT_CONFIG, load_config
from guardd.ipc.client import Client, resolve_socket
from guardd.ipc.protocol import Op
from rules import RulesError, load_rules

PROG = "guard-admin"


def build_parser() -> argparse.ArgumentParser:
    """guard-admin's arguments."""
    parser = argparse.ArgumentParser(prog=PROG, description="Manage guardd (for IT).")
    parser.add_argument("--socket", type=Path, help="guardd's socket (or set GUARDD_SOCKET)")
    parser.add_argument("--config", type=Path, help=f"guardd's config (default {DEFAULT_CONFIG})")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    devices = commands.add_parser("devices", help="USB devices, verdicts, reasons and rules")
    devices.add_argument("--json", action="store_true", help="print JSON")
    devices.set_defaults(func=cmd_devices)
    cloud = commands.add_parser("cloud", help="cloud-sync folders found, their state and why")
    cloud.add_argument("--json", action="store_true", help="print JSON")
    cloud.set_defaults(func=cmd_cloud)
    rules = commands.add_parser("rules", help="work with rules files")
    rules_commands = rules.add_subparsers(dest="rules_command", required=True, metavar="COMMAND")
    check = rules_commands.add_parser("check", help="check a rules file or folder")
    check.add_argument("paths", type=Path, nargs="+", metavar="FILE")
    check.set_defaults(func=cmd_rules_check)
    audit = commands.add_parser("audit", help="the audit trail")
    audit_commands = audit.add_subparsers(dest="audit_command", required=True, metavar="COMMAND")
    verify_cmd = audit_commands.add_parser("verify", help="prove the audit trail is intact")
    verify_cmd.add_argument("--json", action="store_true", help="print JSON")
    verify_cmd.set_defaults(func=cmd_audit_verify)
    commands.add_parser("reload", help="make guardd read its rules again").set_defaults(
        func=cmd_reload
    )
    incidents = commands.add_parser("incidents", help="viruses found on drives (for IT)")
    incidents.add_argument("--json", action="store_true", help="print JSON")
    incidents.set_defaults(func=cmd_incidents)
    scan = commands.add_parser("scan", help="scan a folder (a mounted drive) as guardd would")
    scan.add_argument("path", type=Path, metavar="PATH")
    scan.add_argument("--json", action="store_true", help="print JSON")
    scan.set_defaults(func=cmd_scan)
    add_decision_parsers(commands)
    add_drive_parsers(commands)
    stats = commands.add_parser("stats", help="guardd's own latency and memory figures")
    stats.add_argument("--reset", action="store_true", help="start a fresh latency window")
    stats.set_defaults(func=cmd_stats)
    return parser


def _client(args: argparse.Namespace) -> Client:
    configured = load_config(args.config).socket if args.config else None
    return Client(resolve_socket(args.socket, configured))


def cmd_devices(args: argparse.Namespace) -> int:
    """List devices as the daemon sees them."""
    devices = devices_list(_client(args).call(Op.DEVICES))
    if args.json:
        print_json(devices)
    else:
        print_devices(devices, with_rule=True)
    return EXIT_OK


def cmd_cloud(args: argparse.Namespace) -> int:
    """List every cloud-sync folder the daemon found, with rule and owner."""
    folders = folders_list(_client(args).call(Op.CLOUD, {"all": True}))
    if args.json:
        print_json(folders)
    else:
        print_folders(folders, with_rule=True)
    return EXIT_OK


def cmd_rules_check(args: argparse.Namespace) -> int:
    """Exit 0 when every file is valid; else print FILE:LINE: message lines and exit 1."""
    status = EXIT_OK
    for path in args.paths:
        try:
            ruleset = load_rules(path)
        except RulesError as e:
            for problem in e.problems:
                print(problem)
            status = EXIT_FAILED
        else:
            print(
                f"{path}: ok ({len(ruleset.drives)} enrolled drives, "
                f"{len(ruleset.cloud)} cloud rules)"
            )
    return status


def cmd_audit_verify(args: argparse.Namespace) -> int:
    """Check the hash chain of the trail the configured daemon writes."""
    config = load_config(args.config or DEFAULT_CONFIG)
    result = verify(config.audit_log)
    if args.json:
        print_json(
            {
                "ok": result.ok,
                "records": result.records,
                "first_bad_line": result.first_bad_line,
                "problem": result.problem,
            }
        )
    elif result.ok:
        print(f"{config.audit_log}: intact ({result.records} records)")
    else:
        print(f"{config.audit_log}: NOT intact: {result.problem}")
    return EXIT_OK if result.ok else EXIT_FAILED


def cmd_reload(args: argparse.Namespace) -> int:
    """Ask the daemon to reload its rules; exit 1 when it kept the old ones."""
    result = _client(args).call(Op.RELOAD)
    info = result if isinstance(result, dict) else {}
    if info.get("reloaded"):
        print(f"rules reloaded; {info.get('changed', 0)} device verdicts changed")
        return EXIT_OK
    print("rules NOT reloaded (guardd keeps the previous rules):")
    for problem in info.get("problems") or []:
        print(f"  {problem}")
    return EXIT_FAILED


def cmd_stats(args: argparse.Namespace) -> int:
    """Print the daemon's own figures as JSON."""
    print_json(_client(args).call(Op.STATS, {"reset": args.reset}))
    return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    """Entry point of `guard-admin`."""
    args = build_parser().parse_args(argv)
    command: Callable[[argparse.Namespace], int] = args.func
    return run(PROG, lambda: command(args))


if __name__ == "__main__":
    sys.exit(main())
