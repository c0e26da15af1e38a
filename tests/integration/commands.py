"""Running guardd's own commands from the tests: as root, as a member of staff, or as IT."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from test_signing_support import Homes, Keyring

from sim.daemon import GuarddProcess

BIN = Path(sys.executable).parent


def run(
    *args: str, uid: int | None = None, gnupghome: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """Run one of the venv's console scripts (as `uid` when given, with IT's GNUPGHOME)."""
    command = [str(BIN / args[0]), *args[1:]]
    if uid is not None:
        command = ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", *command]
    env = dict(os.environ)
    if gnupghome is not None:
        env["GNUPGHOME"] = str(gnupghome)
    return subprocess.run(command, capture_output=True, text=True, timeout=60, check=False, env=env)


def it_trusted(daemon: GuarddProcess, homes: Homes, world: Path) -> tuple[Keyring, str]:
    """An IT approver's key, trusted on this machine with guard-admin keys add."""
    it = homes.keyring()
    fpr = it.new_key("IT Approver")
    (world / "it.asc").write_bytes(it.public(fpr))
    added = run("guard-admin", "--config", str(daemon.config), "keys", "add", str(world / "it.asc"))
    assert added.returncode == 0, added.stderr
    assert run("guard-admin", "--socket", str(daemon.socket), "reload").returncode == 0
    return it, fpr
