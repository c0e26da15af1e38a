"""systemd's readiness protocol (sd_notify), without libsystemd.

The service manager passes a datagram socket in NOTIFY_SOCKET (a path, or "@name" in the
abstract namespace); the service sends "KEY=value" lines to it. Outside systemd the variable
is unset and every call is a no-op. Sending never raises: a daemon must not stop guarding
because its manager went away.
"""

from __future__ import annotations

import os
import socket

MAX_STATUS = 200  # systemctl status shows one line; keep it short


def _address(value: str) -> str | None:
    if value.startswith("@"):
        return "\0" + value[1:]  # abstract namespace
    if value.startswith("/"):
        return value
    return None  # vsock and other forms are not used for a system service


def notify(*fields: str, environ: dict[str, str] | None = None) -> bool:
    """Send `fields` ("READY=1", "STATUS=...") to the service manager; False if there is none
    or it cannot be reached."""
    env = os.environ if environ is None else environ
    address = _address(env.get("NOTIFY_SOCKET", ""))
    if address is None or not fields:
        return False
    message = "\n".join(f.replace("\n", " ") for f in fields).encode("utf-8", errors="replace")
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.sendto(message, address)
    except OSError:
        return False
    return True


def status_field(text: str) -> str:
    """A STATUS= field: one line, bounded."""
    line = " ".join(text.split())
    return "STATUS=" + (line if len(line) <= MAX_STATUS else line[: MAX_STATUS - 3] + "...")


def ready(status: str) -> bool:
    """Tell systemd guardd is up (the unit is Type=notify): its socket answers, every present
    device has been judged."""
    return notify("READY=1", status_field(status), f"MAINPID={os.getpid()}")


def stopping(status: str = "stopping: USB controllers stay closed") -> bool:
    """Tell systemd guardd is shutting down."""
    return notify("STOPPING=1", status_field(status))
