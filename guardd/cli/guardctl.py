"""guardctl: what staff run to see what guardd decided about their devices, and to ask IT
for an exception (the tray offers the same)."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from guardd.cli.cloud import folders_list, print_folders
from guardd.cli.common import (
    EXIT_OK,
    devices_list,
    print_devices,
    print_json,
    print_status,
    run,
)
from guardd.cli.requests import print_requests, requests_list
from guardd.ipc.client import Client, resolve_socket
from guardd.ipc.protocol import Op

PROG = "guardctl"
Command = Callable[[Client, argparse.Namespace], int]


def _show(items: list[dict[str, Any]], as_json: bool, show: Callable[[], None]) -> int:
    """JSON for scripts, else the plain-words listing."""
    if as_json:
        print_json(items)
    else:
        show()
    return EXIT_OK


def cmd_devices(client: Client, args: argparse.Namespace) -> int:
    """The devices connected now, their verdicts and why."""
    devices = devices_list(client.call(Op.DEVICES))
    return _show(devices, args.json, lambda: print_devices(devices, with_rule=False))


def cmd_status(client: Client, args: argparse.Namespace) -> int:
    """Is guardd running, and who am I to it."""
    print_status(client.call(Op.HELLO))
    return EXIT_OK


def cmd_request(client: Client, args: argparse.Namespace) -> int:
    """Ask IT for an exception for a blocked device."""
    request = {"device": args.device, "reason": args.reason, "duration": args.duration}
    return _send(client, {**request, "read_only": args.read_only}, args.json)


def _send(client: Client, request: dict[str, object], as_json: bool) -> int:
    made = client.call(Op.REQUEST, request)
    if as_json:
        print_json(made)
    else:
        print("Your request was sent to IT. You will see here when they answer:")
        print_requests(requests_list([made]))
    return EXIT_OK


def cmd_cloud(client: Client, args: argparse.Namespace) -> int:
    """My cloud-sync folders and where they stand."""
    mine = folders_list(client.call(Op.CLOUD))
    return _show(mine, args.json, lambda: print_folders(mine, with_rule=False))


def cmd_request_cloud(client: Client, args: argparse.Namespace) -> int:
    """Ask IT for an exception for a blocked cloud-sync folder."""
    folder = os.path.abspath(args.folder)
    return _send(
        client, {"folder": folder, "reason": args.reason, "duration": args.duration}, args.json
    )


def cmd_requests(client: Client, args: argparse.Namespace) -> int:
    """My requests and where they stand."""
    mine = requests_list(client.call(Op.REQUESTS))
    return _show(mine, args.json, lambda: print_requests(mine))


def build_parser() -> argparse.ArgumentParser:
    """guardctl's arguments."""
    parser = argparse.ArgumentParser(prog=PROG, description="See what guardd decided, and why.")
    parser.add_argument("--socket", type=Path, help="guardd's socket (or set GUARDD_SOCKET)")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    devices = commands.add_parser("devices", help="the USB devices connected and their verdicts")
    devices.add_argument("--json", action="store_true", help="print JSON")
    devices.set_defaults(func=cmd_devices)
    commands.add_parser("status", help="is guardd running, and who am I to it").set_defaults(
        func=cmd_status
    )
    request = commands.add_parser("request", help="ask IT for an exception for a blocked device")
    request.add_argument("device", metavar="DEVICE", help="the device's id (see guardctl devices)")
    request.add_argument("--reason", required=True, help="why you need it, in a few words")
    request.add_argument("--for", dest="duration", default="1d", help="how long: 90m, 8h, 2d, 1w")
    request.add_argument("--read-only", action="store_true", help="only to read files from it")
    request.add_argument("--json", action="store_true", help="print JSON")
    request.set_defaults(func=cmd_request)
    cloud = commands.add_parser("cloud", help="your cloud-sync folders and where they stand")
    cloud.add_argument("--json", action="store_true", help="print JSON")
    cloud.set_defaults(func=cmd_cloud)
    request_cloud = commands.add_parser(
        "request-cloud", help="ask IT for an exception for a blocked cloud-sync folder"
    )
    request_cloud.add_argument("folder", metavar="FOLDER", help="the folder (see guardctl cloud)")
    request_cloud.add_argument("--reason", required=True, help="why you need it, in a few words")
    request_cloud.add_argument(
        "--for", dest="duration", default="1d", help="how long: 90m, 8h, 2d, 1w"
    )
    request_cloud.add_argument("--json", action="store_true", help="print JSON")
    request_cloud.set_defaults(func=cmd_request_cloud)
    mine = commands.add_parser("requests", help="your requests and where they stand")
    mine.add_argument("--json", action="store_true", help="print JSON")
    mine.set_defaults(func=cmd_requests)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of `guardctl`."""
    args = build_parser().parse_args(argv)
    client = Client(resolve_socket(args.socket))
    command: Command = args.func
    return run(PROG, lambda: command(client, args))


if __name__ == "__main__":
    sys.exit(main())
