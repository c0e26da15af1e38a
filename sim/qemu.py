"""A QEMU guest (TCG) driven from the host: QMP for USB hot-plug, a guest agent for the rest.

Shared by the e2e tests (tests/e2e/) and the bench (bench/usbguard.py). The guest boots the
image from sim.guest_image with snapshot=on, so every boot starts from the same clean disk.
"""

from __future__ import annotations

import base64
import contextlib
import itertools
import json
import os
import signal
import socket
import subprocess
import tempfile
import threading
import time
from concurrent.futures import Future
from pathlib import Path
from typing import Any

from sim.env import real_env
from sim.guest_image import AGENT_PORT, GuestImage

BOOT_TIMEOUT = 300.0


class GuestError(Exception):
    """The guest or QEMU did not do what was asked."""


class Qmp:
    """A QMP connection: commands answered in order, events kept for whoever waits on them."""

    def __init__(self, path: Path, timeout: float = 30.0) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect(str(path))
        self.file = self.sock.makefile("rwb")
        self.events: list[dict[str, Any]] = []
        self._read()  # greeting
        self.execute("qmp_capabilities")

    def _read(self) -> dict[str, Any]:
        line = self.file.readline()
        if not line:
            raise GuestError("QEMU closed its QMP socket")
        message: dict[str, Any] = json.loads(line)
        return message

    def execute(self, command: str, **arguments: Any) -> Any:
        """Run one command; its "return", or GuestError with QEMU's message."""
        request: dict[str, Any] = {"execute": command}
        if arguments:
            request["arguments"] = arguments
        self.file.write(json.dumps(request).encode() + b"\n")
        self.file.flush()
        while True:
            message = self._read()
            if "event" in message:
                self.events.append(message)
            elif "error" in message:
                raise GuestError(f"{command}: {message['error'].get('desc')}")
            elif "return" in message:
                return message["return"]

    def wait_event(self, name: str, device: str, timeout: float = 30.0) -> None:
        """Wait for an event (DEVICE_DELETED) about one device id."""
        deadline = time.monotonic() + timeout
        while True:
            for event in self.events:
                if event["event"] == name and event.get("data", {}).get("device") == device:
                    self.events.remove(event)
                    return
            if time.monotonic() > deadline:
                raise GuestError(f"no {name} for {device} within {timeout} s")
            self.sock.settimeout(max(0.1, deadline - time.monotonic()))
            try:
                self.events.append(self._read())
            except TimeoutError:
                continue

    def close(self) -> None:
        """Close the connection."""
        self.file.close()
        self.sock.close()


class AgentClient:
    """Requests to the guest agent over the virtio-serial port; replies matched by id."""

    def __init__(self, path: Path) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(str(path))
        self._ids = itertools.count(1)
        self._pending: dict[int, Future[dict[str, Any]]] = {}
        self._lock = threading.Lock()
        threading.Thread(target=self._reader, daemon=True).start()

    def _reader(self) -> None:
        buffer = b""
        while True:
            try:
                chunk = self.sock.recv(1 << 20)
            except OSError:
                chunk = b""
            if not chunk:
                with self._lock:
                    for future in self._pending.values():
                        future.set_exception(GuestError("the guest agent went away"))
                    self._pending.clear()
                return
            buffer += chunk
            while b"\n" in buffer:
                line, buffer = buffer.split(b"\n", 1)
                self._deliver(line)

    def _deliver(self, line: bytes) -> None:
        try:
            message = json.loads(line)
        except ValueError:
            return
        with self._lock:
            future = self._pending.pop(message.get("id"), None)
        if future is not None:
            future.set_result(message)

    def send(self, op: str, **fields: Any) -> Future[dict[str, Any]]:
        """Send a request; a future of its reply (wait on it later: waits can overlap)."""
        ident = next(self._ids)
        future: Future[dict[str, Any]] = Future()
        with self._lock:
            self._pending[ident] = future
        data = json.dumps({"id": ident, "op": op, **fields}).encode() + b"\n"
        self.sock.sendall(data)
        return future

    def call(self, op: str, wait: float = 120.0, **fields: Any) -> dict[str, Any]:
        """Send a request and wait up to `wait` s for its reply; GuestError if the agent
        reports a failure."""
        reply = self.send(op, **fields).result(wait)
        if not reply.get("ok"):
            raise GuestError(f"agent {op}: {reply.get('error')}")
        return reply

    def run(
        self, *argv: str, timeout: float = 60.0, check: bool = True, input_text: str = ""
    ) -> dict[str, Any]:
        """Run a command in the guest; its rc, stdout and stderr."""
        reply = self.call(
            "run", wait=timeout + 10, argv=list(argv), timeout=timeout, input=input_text
        )
        if check and reply["rc"] != 0:
            raise GuestError(
                f"{' '.join(argv)} exited {reply['rc']}: {reply['stderr'].strip()[-500:]}"
            )
        return reply

    def sh(self, script: str, timeout: float = 60.0, check: bool = True) -> str:
        """Run a shell script in the guest; its stdout."""
        out: str = self.run("sh", "-c", script, timeout=timeout, check=check)["stdout"]
        return out

    def write_file(self, path: str, data: bytes, mode: int = 0o644) -> None:
        """Write a file in the guest."""
        self.call("write_file", path=path, data=base64.b64encode(data).decode(), mode=mode)

    def close(self) -> None:
        """Close the connection."""
        self.sock.close()


class Guest:
    """A running QEMU guest with a USB controller (qemu-xhci) to plug sticks into."""

    def __init__(self, image: GuestImage, workdir: Path | None = None, memory_mb: int = 1024):
        self.image = image
        self.dir = workdir or Path(tempfile.mkdtemp(prefix="guardd-qemu-"))
        self.console = self.dir / "console.log"
        self.memory_mb = memory_mb
        self.proc: subprocess.Popen[bytes] | None = None
        self.qmp: Qmp | None = None
        self.agent: AgentClient | None = None
        self._nodes: dict[str, str] = {}

    def start(self, timeout: float = BOOT_TIMEOUT) -> None:
        """Boot and wait until the agent answers."""
        qmp_path, agent_path = self.dir / "qmp.sock", self.dir / "agent.sock"
        argv = [
            "qemu-system-x86_64",
            "-accel",
            "tcg",
            "-smp",
            "2",
            "-m",
            str(self.memory_mb),
            "-display",
            "none",
            "-no-reboot",
            "-kernel",
            str(self.image.kernel),
            "-initrd",
            str(self.image.initrd),
            "-append",
            "console=ttyS0 root=/dev/vda rw panic=-1 systemd.show_status=0",
            "-drive",
            f"file={self.image.rootfs},if=virtio,format=raw,snapshot=on",
            "-device",
            "qemu-xhci,id=xhci",
            "-qmp",
            f"unix:{qmp_path},server=on,wait=off",
            "-device",
            "virtio-serial-pci",
            "-chardev",
            f"socket,id=agent,path={agent_path},server=on,wait=off",
            "-device",
            f"virtserialport,chardev=agent,name={AGENT_PORT}",
            "-serial",
            f"file:{self.console}",
            "-nic",
            "none",
        ]
        self.proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, start_new_session=True, env=real_env()
        )
        deadline = time.monotonic() + timeout
        while not (qmp_path.exists() and agent_path.exists()):
            self._check_alive()
            if time.monotonic() > deadline:
                raise GuestError("QEMU did not open its sockets")
            time.sleep(0.05)
        self.qmp = Qmp(qmp_path)
        self.agent = AgentClient(agent_path)
        while True:
            self._check_alive()
            try:
                self.agent.call("ping", wait=2.0)
            except TimeoutError:
                if time.monotonic() > deadline:
                    raise GuestError(
                        f"the guest agent did not answer; see {self.console}"
                    ) from None
            else:
                return

    def _check_alive(self) -> None:
        if self.proc is not None and self.proc.poll() is not None:
            raise GuestError(f"QEMU exited with {self.proc.returncode}; see {self.console}")

    @property
    def a(self) -> AgentClient:
        """The guest agent (the guest must be started)."""
        if self.agent is None:
            raise GuestError("the guest is not started")
        return self.agent

    def _qmp(self) -> Qmp:
        if self.qmp is None:
            raise GuestError("the guest is not started")
        return self.qmp

    def plug(self, device_id: str, image: Path, serial: str) -> float:
        """Hot-plug a usb-storage stick backed by `image`; the host's monotonic time at the
        moment device_add was sent."""
        qmp = self._qmp()
        node = f"n-{device_id}"
        if device_id not in self._nodes:
            qmp.execute(
                "blockdev-add",
                **{
                    "node-name": node,
                    "driver": "raw",
                    "file": {"driver": "file", "filename": str(image)},
                },
            )
            self._nodes[device_id] = node
        started = time.monotonic()
        qmp.execute(
            "device_add",
            driver="usb-storage",
            id=device_id,
            drive=node,
            serial=serial,
            bus="xhci.0",
            removable=True,
        )
        return started

    def unplug(self, device_id: str, forget: bool = False) -> None:
        """Unplug a stick and wait until the guest has let go of it."""
        qmp = self._qmp()
        qmp.execute("device_del", id=device_id)
        qmp.wait_event("DEVICE_DELETED", device_id)
        if forget:
            qmp.execute("blockdev-del", **{"node-name": self._nodes.pop(device_id)})

    def stop(self) -> None:
        """Power the guest off (it is a snapshot: nothing is kept)."""
        if self.agent is not None:
            self.agent.close()
        if self.qmp is not None:
            with contextlib.suppress(GuestError, OSError):
                self.qmp.execute("quit")
            self.qmp.close()
        if self.proc is not None:
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
