"""guardctl: what staff run to see what guardd decided about their devices, and why."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from guardd.cli.common import (
    EXIT_OK,
    devices_list,
    print_devices,
    print_json,
    print_status,
    run,
)
from guardd.ipc.client import Client, resolve_socket
from guardd.ipc.protocol import Op

PROG = "guardctl"


def build_parser() -> argparse.ArgumentParser:
    """guardctl's arguments."""
    parser = argparse.ArgumentParser(prog=PROG, description="See what guardd decided, and why.")
    parser.add_argument("--socket", type=Path, help="guardd's socket (or set GUARDD_SOCKET)")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    devices = commands.add_parser("devices", help="the USB devices connected and their verdicts")
    devices.add_argument("--json", action="store_true", help="print JSON")
    commands.add_parser("status", help="is guardd running, and who am I to it")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of `guardctl`."""
    args = build_parser().parse_args(argv)
    client = Client(resolve_socket(args.socket))

    def body() -> int:
        if args.command == "devices":
            devices = devices_list(client.call(Op.DEVICES))
            if args.json:
                print_json(devices)
            else:
                print_devices(devices, with_rule=False)
        else:
            print_status(client.call(Op.HELLO))
        return EXIT_OK

    return run(PROG, body)


if __name__ == "__main__":
    sys.exit(main())
