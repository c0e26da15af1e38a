"""What both CLIs share: exit codes, one-line errors, and showing devices to a person."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Sequence
from typing import Any

from guardd.errors import ErrorCode, GuarddError
from guardd.exchange.spool import SpoolError
from signing.errors import SigningError

EXIT_OK = 0
EXIT_FAILED = 1  # the check ran and found a problem (broken rules, altered audit trail)
EXIT_USAGE = 2  # bad input: arguments, config file
EXIT_UNAVAILABLE = 3  # guardd is not running or not reachable
EXIT_NOT_PERMITTED = 4

_EXIT_FOR_CODE = {
    ErrorCode.UNAVAILABLE: EXIT_UNAVAILABLE,
    ErrorCode.NOT_PERMITTED: EXIT_NOT_PERMITTED,
    ErrorCode.INVALID_CONFIG: EXIT_USAGE,
    ErrorCode.INVALID_ARGUMENT: EXIT_USAGE,
}

KIND_WORDS = {
    "storage": "USB drive",
    "composite": "USB device with storage",
    "hid": "keyboard or mouse",
    "hub": "USB hub",
    "other": "USB device",
}


def run(prog: str, body: Callable[[], int]) -> int:
    """Run a CLI body: expected failures become one line on stderr and an exit code."""
    try:
        return body()
    except GuarddError as e:
        print(f"{prog}: {e.message}", file=sys.stderr)
        return _EXIT_FOR_CODE.get(e.code, EXIT_FAILED)
    except (SigningError, SpoolError) as e:
        print(f"{prog}: {e}", file=sys.stderr)
        return EXIT_FAILED
    except BrokenPipeError:  # before OSError, of which it is one: `| head` is not an error
        return EXIT_OK
    except OSError as e:
        print(f"{prog}: {e.strerror or e}: {e.filename or ''}".rstrip(": "), file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130


def safe(text: object, limit: int = 64) -> str:
    """Show a device-chosen string without letting it draw on the terminal."""
    if text is None or text == "":
        return "(none)"
    shown = "".join(c if c.isprintable() else f"\\x{ord(c):02x}" for c in str(text))
    return shown if len(shown) <= limit else shown[: limit - 1] + "…"


def print_json(value: object) -> None:
    """Machine-readable output: one JSON document."""
    json.dump(value, sys.stdout, indent=2, ensure_ascii=False)
    sys.stdout.write("\n")


def devices_list(result: object) -> list[dict[str, Any]]:
    """Check the daemon's answer has the shape of a device list."""
    if not isinstance(result, list) or not all(isinstance(d, dict) for d in result):
        raise GuarddError(ErrorCode.INTERNAL, "unexpected answer from guardd")
    return result


def describe(device: dict[str, Any]) -> str:
    """'USB drive "SanDisk Cruzer" (serial 1234), port 2-1' for people."""
    kind = KIND_WORDS.get(str(device.get("kind")), "USB device")
    name = " ".join(x for x in (device.get("manufacturer"), device.get("product")) if x)
    named = f' "{safe(name)}"' if name else ""
    return f"{kind}{named} (serial {safe(device.get('serial'))}), id {safe(device.get('id'), 16)}"


def print_devices(devices: Sequence[dict[str, Any]], with_rule: bool) -> None:
    """The human listing: one device per paragraph, its verdict's reason under it."""
    if not devices:
        print("No USB devices are connected.")
        return
    for device in devices:
        print(describe(device))
        print(f"    {safe(device.get('reason'), 200)}")
        if device.get("warning"):
            print(f"    warning: {safe(device.get('warning'), 200)}")
        if with_rule:
            ids = f"{safe(device.get('vendor_id'), 8)}:{safe(device.get('product_id'), 8)}"
            print(f"    rule {safe(device.get('rule'), 100)}; usb id {ids}")
        print_scan(device.get("scan"))
        for volume in device.get("volumes") or []:
            name, fs = safe(volume.get("name"), 20), safe(volume.get("fs_type"), 20)
            print(f"    volume {name} ({fs}): {safe(volume.get('reason'), 200)}")


def print_status(hello: object) -> None:
    """'guardd 0.1.0 is running; you are alice (staff).'"""
    info = hello if isinstance(hello, dict) else {}
    role = "IT administrator" if info.get("admin") else "staff"
    version, user = safe(info.get("version"), 20), safe(info.get("user"))
    print(f"guardd {version} is running; you are {user} ({role}).")


def print_scan(scan: object) -> None:
    """The infected files of a drive's last scan, one a line (the reason already says the rest)."""
    if not isinstance(scan, dict):
        return
    infected = scan.get("infected")
    for item in infected if isinstance(infected, list) else []:
        if isinstance(item, dict):
            path, signature = safe(item.get("path"), 200), safe(item.get("signature"), 100)
            print(f"    virus found: {path} ({signature})")
