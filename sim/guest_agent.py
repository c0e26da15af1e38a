"""The guest agent: runs inside the QEMU guest (tests only), driven over a virtio-serial port.

Standard library only (the guest's /usr/bin/python3). One JSON object per line each way.
Requests carry an "id" and an "op"; each runs in a thread of its own, so a long wait does not
hold up other requests, and every reply carries the request's id.

It also records every kernel uevent from boot (netlink), so the host can ask "did a block
device ever appear under this USB device?" and wait for an event without a race: the host
first asks for `mark` (the current event number and file sizes), then sends a wait that
looks at everything after the mark.
"""

from __future__ import annotations

import base64
import ctypes
import json
import os
import select
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

PORT = "/dev/virtio-ports/org.guardd.agent"
NETLINK_KOBJECT_UEVENT = 15
IN_MODIFY = 0x2
MAX_OUTPUT = 4 * 1024 * 1024

Handler = Callable[[dict[str, Any]], dict[str, Any]]


class Uevents:
    """Every kernel uevent since the agent started, numbered, with the guest's clock."""

    def __init__(self) -> None:
        self.events: list[dict[str, str]] = []
        self.cond = threading.Condition()
        self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, NETLINK_KOBJECT_UEVENT)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 * 1024 * 1024)
        self.sock.bind((0, 1))
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        while True:
            data = self.sock.recv(65536)
            parts = data.split(b"\0")
            event = {"HEADER": parts[0].decode(errors="replace")}
            for part in parts[1:]:
                key, sep, value = part.decode(errors="replace").partition("=")
                if sep:
                    event[key] = value
            event["T"] = repr(time.monotonic())
            with self.cond:
                self.events.append(event)
                self.cond.notify_all()

    def mark(self) -> int:
        """The number of events seen so far."""
        with self.cond:
            return len(self.events)

    def wait(self, match: dict[str, str], since: int, timeout: float) -> dict[str, str] | None:
        """The first event after `since` whose keys have the given values (a value ending in
        '*' matches by prefix); None on timeout."""
        deadline = time.monotonic() + timeout
        with self.cond:
            index = since
            while True:
                while index < len(self.events):
                    event = self.events[index]
                    index += 1
                    if all(_matches(event.get(k), v) for k, v in match.items()):
                        return event
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self.cond.wait(left)


def _matches(value: str | None, wanted: str) -> bool:
    if value is None:
        return False
    if wanted.endswith("*"):
        return value.startswith(wanted[:-1])
    return value == wanted


class Inotify:
    """inotify through libc: wait for a file to grow."""

    def __init__(self) -> None:
        self.libc = ctypes.CDLL(None, use_errno=True)

    def wait_line(self, path: str, offset: int, needles: list[str], timeout: float) -> str | None:
        """The first complete line after byte `offset` containing every needle."""
        fd = self.libc.inotify_init1(os.O_CLOEXEC | os.O_NONBLOCK)
        if fd < 0:
            raise OSError(ctypes.get_errno(), "inotify_init1")
        try:
            if self.libc.inotify_add_watch(fd, path.encode(), IN_MODIFY) < 0:
                raise OSError(ctypes.get_errno(), f"inotify_add_watch {path}")
            deadline = time.monotonic() + timeout
            while True:
                found, offset = _scan(path, offset, needles)
                if found is not None:
                    return found
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                readable, _, _ = select.select([fd], [], [], left)
                if readable:
                    os.read(fd, 65536)
        finally:
            os.close(fd)


def _scan(path: str, offset: int, needles: list[str]) -> tuple[str | None, int]:
    with open(path, "rb") as file:
        file.seek(offset)
        data = file.read()
    end = data.rfind(b"\n") + 1
    for line in data[:end].decode(errors="replace").splitlines():
        if all(n in line for n in needles):
            return line, offset + end
    return None, offset + end


class Agent:
    """Reads requests from the port, answers each from a thread of its own."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.lock = threading.Lock()
        self.uevents = Uevents()
        self.inotify = Inotify()
        self.ops: dict[str, Handler] = {
            "ping": lambda r: {},
            "run": self.run,
            "write_file": self.write_file,
            "mark": self.mark,
            "wait_uevent": self.wait_uevent,
            "wait_line": self.wait_line,
            "uevents": self.list_uevents,
        }

    def send(self, message: dict[str, Any]) -> None:
        data = (json.dumps(message) + "\n").encode()
        with self.lock:
            view = memoryview(data)
            while view:
                written = os.write(self.fd, view)
                view = view[written:]

    def serve(self) -> None:
        self.send({"event": "hello", "t": time.monotonic()})
        buffer = b""
        while True:
            chunk = os.read(self.fd, 65536)
            if not chunk:
                time.sleep(0.05)  # host not connected yet
                continue
            buffer += chunk
            while b"\n" in buffer:
                line, buffer = buffer.split(b"\n", 1)
                if line.strip():
                    self.dispatch(line)

    def dispatch(self, line: bytes) -> None:
        try:
            request = json.loads(line)
        except ValueError:
            return
        handler = self.ops.get(request.get("op", ""))
        if handler is None:
            self.send({"id": request.get("id"), "ok": False, "error": "unknown op"})
            return
        threading.Thread(target=self._answer, args=(handler, request), daemon=True).start()

    def _answer(self, handler: Handler, request: dict[str, Any]) -> None:
        try:
            reply = {"id": request.get("id"), "ok": True, **handler(request)}
        except Exception as e:  # noqa: BLE001 - the agent reports every failure to the host
            reply = {"id": request.get("id"), "ok": False, "error": f"{type(e).__name__}: {e}"}
        reply["t"] = time.monotonic()
        self.send(reply)

    def run(self, r: dict[str, Any]) -> dict[str, Any]:
        done = subprocess.run(
            r["argv"],
            input=r.get("input", "").encode(),
            capture_output=True,
            timeout=r.get("timeout", 60),
            check=False,
            env={**os.environ, **r.get("env", {})},
        )
        return {
            "rc": done.returncode,
            "stdout": done.stdout[:MAX_OUTPUT].decode(errors="replace"),
            "stderr": done.stderr[:MAX_OUTPUT].decode(errors="replace"),
        }

    def write_file(self, r: dict[str, Any]) -> dict[str, Any]:
        path = r["path"]
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as file:
            file.write(base64.b64decode(r["data"]))
        os.chmod(path, r.get("mode", 0o644))
        return {}

    def mark(self, r: dict[str, Any]) -> dict[str, Any]:
        sizes = {}
        for path in r.get("paths", []):
            try:
                sizes[path] = os.stat(path).st_size
            except OSError:
                sizes[path] = 0
        return {"seq": self.uevents.mark(), "sizes": sizes}

    def wait_uevent(self, r: dict[str, Any]) -> dict[str, Any]:
        event = self.uevents.wait(r["match"], r["since"], r.get("timeout", 30))
        return {"event": event}

    def wait_line(self, r: dict[str, Any]) -> dict[str, Any]:
        line = self.inotify.wait_line(r["path"], r["offset"], r["needles"], r.get("timeout", 30))
        return {"line": line}

    def list_uevents(self, r: dict[str, Any]) -> dict[str, Any]:
        return {"events": self.uevents.events[r.get("since", 0) :]}


def main() -> int:
    """Wait for the port, then serve until the guest shuts down."""
    while not os.path.exists(PORT):
        time.sleep(0.1)
    fd = os.open(PORT, os.O_RDWR)
    Agent(fd).serve()
    return 0


if __name__ == "__main__":
    sys.exit(main())
