"""`guard-tray`: the staff tray. `--socket PATH` or GUARDD_SOCKET says where guardd listens."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from guardd.ipc.client import resolve_socket


def build_parser() -> argparse.ArgumentParser:
    """guard-tray's arguments."""
    parser = argparse.ArgumentParser(
        prog="guard-tray", description="The USB guard shield in the system tray."
    )
    parser.add_argument("--socket", type=Path, help="guardd's socket (or set GUARDD_SOCKET)")
    parser.add_argument("--verbose", action="store_true", help="log what the tray does")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of `guard-tray`."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="guard-tray: %(message)s",
        stream=sys.stderr,
    )
    os.environ.setdefault("NO_AT_BRIDGE", "1")  # no accessibility-bus warnings without one
    # A tray needs no OpenGL; without this GDK probes GLX at start and maps the GL driver
    # (Mesa's llvmpipe alone is ~50 MB resident).
    os.environ.setdefault("GDK_GL", "disable")
    try:
        from tray.app import TrayApp  # noqa: PLC0415 - GTK only once the arguments are read
    except (ImportError, ValueError) as e:
        print(f"guard-tray: cannot start: {e}", file=sys.stderr)
        return 2
    return TrayApp(resolve_socket(args.socket)).run()


if __name__ == "__main__":
    sys.exit(main())
