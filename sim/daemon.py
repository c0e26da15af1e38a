"""Run a real guardd as a child process against a umockdev testbed, in a throw-away world."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from guardd.errors import GuarddError
from guardd.ipc.client import Client
from guardd.ipc.protocol import Op

RULES_HEADER = "[policy]\nrequire_encryption = true\n"


def drive_toml(serial: str, label: str, vendor_id: str = "46f4", product_id: str = "0001") -> str:
    """One [[drive]] table."""
    return (
        f'\n[[drive]]\nserial = "{serial}"\nvendor_id = "{vendor_id}"\n'
        f'product_id = "{product_id}"\nlabel = "{label}"\n'
    )


class GuarddProcess:
    """A guardd child seeing the testbed at `umockdev_dir`, with its own state and socket."""

    def __init__(
        self,
        workdir: Path,
        umockdev_dir: str,
        rules: str,
        clamd_socket: Path | None = None,
        homes: list[Path] | None = None,
    ) -> None:
        self.workdir = workdir
        self.umockdev_dir = umockdev_dir
        self.rules_path = workdir / "rules.toml"
        self.state_dir = workdir / "state"
        self.socket = workdir / "guardd.sock"
        self.config = workdir / "guardd.toml"
        self.log = workdir / "guardd.log"
        self.proc: subprocess.Popen[bytes] | None = None
        workdir.mkdir(parents=True, exist_ok=True)
        self.rules_path.write_text(rules)
        # Without a clamd of the test's own, point at none: never at the machine's clamd.
        clamd = clamd_socket or workdir / "no-clamd.sock"
        # Its own homes (empty unless the test fills them): never the machine's /home.
        self.homes = homes or [workdir / "homes"]
        for home in self.homes:
            home.mkdir(parents=True, exist_ok=True)
        watched = ", ".join(f'"{h}"' for h in self.homes)
        self.config.write_text(
            f'rules = "{self.rules_path}"\nstate_dir = "{self.state_dir}"\n'
            f'socket = "{self.socket}"\nclamd_socket = "{clamd}"\nwatch_homes = [{watched}]\n'
        )

    @property
    def client(self) -> Client:
        """A client of this daemon's socket."""
        return Client(self.socket, timeout=10.0)

    def start(self, timeout: float = 20.0) -> None:
        """Start guardd and wait until it answers on its socket."""
        env = dict(os.environ, UMOCKDEV_DIR=self.umockdev_dir)
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "guardd.daemon", "--config", str(self.config)],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        wait_for(self._answers, timeout, lambda: f"guardd did not start:\n{self.log.read_text()}")

    def _answers(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise RuntimeError(f"guardd exited {self.proc.returncode}:\n{self.log.read_text()}")
        try:
            self.client.call(Op.HELLO)
        except GuarddError:
            return False
        return True

    def stop(self, sig: int = signal.SIGTERM) -> int:
        """Stop guardd (SIGTERM, or SIGKILL to simulate a crash); return its exit status."""
        if self.proc is None:
            return 0
        self.proc.send_signal(sig)
        code = self.proc.wait(timeout=20)
        self.proc = None
        return code

    def events(self) -> list[dict[str, Any]]:
        """The audit trail's records so far."""
        lines = (self.state_dir / "audit.jsonl").read_text().splitlines()
        return [json.loads(line) for line in lines]

    def reload(self) -> object:
        """Ask guardd to read its rules again (as guard-admin reload does)."""
        return self.client.call(Op.RELOAD)

    def devices(self) -> list[dict[str, Any]]:
        """What `guardctl devices --json` would print."""
        result = self.client.call(Op.DEVICES)
        assert isinstance(result, list)
        return result

    def device(self, device_id: str) -> dict[str, Any] | None:
        """One device by id, or None."""
        return next((d for d in self.devices() if d["id"] == device_id), None)

    def wait_verdict(self, device_id: str, verdict: str, timeout: float = 10.0) -> dict[str, Any]:
        """Wait until the daemon shows `verdict` for the device; return the device."""
        found: dict[str, Any] = {}

        def done() -> bool:
            device = self.device(device_id)
            if device is not None and device["verdict"] == verdict:
                found.update(device)
                return True
            return False

        wait_for(done, timeout, lambda: f"{device_id} never {verdict}: {self.device(device_id)}")
        return found

    def wait_gone(self, device_id: str, timeout: float = 10.0) -> None:
        """Wait until the daemon no longer lists the device."""
        wait_for(lambda: _gone(self, device_id), timeout, lambda: f"{device_id} still listed")


def _gone(daemon: GuarddProcess, device_id: str) -> bool:
    return daemon.device(device_id) is None


def wait_for(
    condition: Callable[[], object],
    timeout: float,
    why: Callable[[], str],
    interval: float = 0.01,
) -> None:
    """Poll `condition` until true (every `interval` seconds: longer where each check is
    costly, as a command in the QEMU guest); raise TimeoutError with `why()` after `timeout`."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(why())
        time.sleep(interval)
