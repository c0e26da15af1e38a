"""`guard-tray` as a command: its arguments, GUARDD_SOCKET, and a clean stop on SIGTERM, in a
session with no display and no session bus (it says so and keeps trying to reach guardd)."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

from sim.env import real_env

TRAY = str(Path(sys.executable).parent / "guard-tray")


def _bare_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in real_env().items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    env.pop("DBUS_SESSION_BUS_ADDRESS", None)
    env["DBUS_SESSION_BUS_ADDRESS"] = "unix:path=/nonexistent/bus"
    return {**env, **extra}


def test_bad_arguments_are_one_clear_line_and_exit_2() -> None:
    done = subprocess.run(
        [TRAY, "--no-such-option"], capture_output=True, text=True, timeout=30, check=False
    )
    assert done.returncode == 2
    assert "unrecognized arguments: --no-such-option" in done.stderr
    assert "Traceback" not in done.stderr


def test_guardd_socket_from_the_environment_and_a_clean_stop(tmp_path: Path) -> None:
    log = tmp_path / "tray.log"
    wanted = tmp_path / "from-env.sock"
    with log.open("wb") as out:
        tray = subprocess.Popen(
            [TRAY, "--verbose"],
            env=_bare_env(GUARDD_SOCKET=str(wanted)),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 30
        while f"cannot be reached at {wanted}" not in log.read_text():
            assert tray.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)
        text = log.read_text()
        assert text.count("no tray can show the icon here") == 1
    finally:
        tray.send_signal(signal.SIGTERM)
        code = tray.wait(timeout=30)
    assert code == 0, log.read_text()
    assert "Traceback" not in log.read_text()
