"""A virtual screen for the real tray (no tests here): Xvfb on a free display, a tray host
(trayer), a session bus (dbus-run-session) with a notification daemon (dunst) that records
what it shows, and the real `guard-tray`, all but Xvfb run as an unprivileged member of staff.

Every process is started in its own session and stopped by its own id. Nothing here sleeps
to let things happen: callers wait for conditions (the icon's colour on a screenshot, a
window's name, a line in dunst's record).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from PIL import Image

from sim.daemon import wait_for
from sim.env import real_env

BIN = Path(sys.executable).parent
TOOLS = ("Xvfb", "trayer", "xdotool", "import", "dunst", "dbus-run-session")
WIDTH, HEIGHT = 800, 600
TRAY_BAND = 40  # trayer's panel sits along the top edge

DUNSTRC = """\
[global]
    font = DejaVu Sans 9
    width = 380
    origin = bottom-left
    offset = 10x10
    frame_width = 1
    frame_color = "#444444"
[urgency_low]
    background = "#fafafa"
    foreground = "#222222"
    timeout = 60
[urgency_normal]
    background = "#fafafa"
    foreground = "#222222"
    timeout = 60
[urgency_critical]
    background = "#fff0f0"
    foreground = "#222222"
    timeout = 60
[record]
    summary = "*"
    script = {script}
"""

# The session bus: its socket in the screen's folder, and no service files, so nothing is ever
# started by D-Bus activation (a call to the notification service before dunst owns its name
# would otherwise start a second dunst, with the desktop's config, and the first would quit).
BUS_CONFIG = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:path={socket}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
"""

NAME_HAS_OWNER = (
    *("dbus-send", "--session", "--print-reply", "--dest=org.freedesktop.DBus"),
    *("/org/freedesktop/DBus", "org.freedesktop.DBus.NameHasOwner"),
)

RECORD_SCRIPT = """#!/bin/sh
# dunst calls this for every notification it shows: appname summary body icon urgency
printf '%s\\t%s\\n' "$2" "$3" >> {log}
"""


def missing_tools() -> list[str]:
    """The programs this screen needs that are not installed."""
    return [tool for tool in TOOLS if shutil.which(tool) is None]


def _hex(colour: str) -> tuple[int, int, int]:
    return int(colour[1:3], 16), int(colour[3:5], 16), int(colour[5:7], 16)


def _kill(proc: subprocess.Popen[bytes] | None) -> None:
    if proc is None or proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)  # its own session: the process and its children
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


class Screen:
    """Xvfb, trayer and a session bus with dunst; `start_tray` runs guard-tray on it."""

    def __init__(self, workdir: Path, uid: int, tray_host: bool = True) -> None:
        self.workdir = workdir
        self.uid = uid
        self.tray_host = tray_host
        self.display = ""
        self.bus_address = ""
        self.notes = workdir / "notifications.log"
        self.tray_log = workdir / "tray.log"
        self._procs: list[subprocess.Popen[bytes]] = []
        self.tray: subprocess.Popen[bytes] | None = None
        self._home = workdir / "home"

    # -- starting -------------------------------------------------------------------------

    def start(self) -> None:
        """Bring the screen, the tray host and the session bus up (waits until each is)."""
        for folder in (self.workdir, self._home, self._home / "run"):
            folder.mkdir(parents=True, exist_ok=True)
            os.chown(folder, self.uid, self.uid)
        (self._home / "run").chmod(0o700)
        # A steady cursor and no animations, so two screenshots differ only when something changed.
        gtk = self._home / ".config" / "gtk-3.0"
        gtk.mkdir(parents=True, exist_ok=True)
        (gtk / "settings.ini").write_text(
            "[Settings]\ngtk-cursor-blink = false\ngtk-enable-animations = false\n"
        )
        self._start_xvfb()
        if self.tray_host:
            self._procs.append(
                self._spawn(
                    [
                        "trayer",
                        "--edge",
                        "top",
                        "--align",
                        "right",
                        "--widthtype",
                        "request",
                        "--height",
                        "32",
                        "--transparent",
                        "false",
                        "--tint",
                        "0xdddddd",
                    ]
                )
            )
            trayer_log = self.workdir / "trayer.log"
            wait_for(
                lambda: self.window("panel") is not None,
                15,
                lambda: f"no trayer panel on {self.display}: {trayer_log.read_text()}",
            )
        self._start_bus()

    _screen_args = ("-screen", "0", f"{WIDTH}x{HEIGHT}x24")

    def _start_xvfb(self) -> None:
        read_end, write_end = os.pipe()
        with (self.workdir / "xvfb.log").open("wb") as log:
            xvfb = subprocess.Popen(
                [
                    *("Xvfb", "-displayfd", str(write_end), "-nolisten", "tcp", "-noreset"),
                    *self._screen_args,
                ],
                pass_fds=(write_end,),
                env=real_env(),
                stdout=subprocess.DEVNULL,
                stderr=log,
                start_new_session=True,
            )
        self._procs.append(xvfb)
        os.close(write_end)
        with os.fdopen(read_end, "rb") as numbers:
            number = numbers.readline().strip().decode()  # Xvfb writes it once it listens
        if not number.isdigit():
            raise RuntimeError(f"Xvfb did not start: {(self.workdir / 'xvfb.log').read_text()}")
        self.display = f":{number}"
        # Xvfb names its display before it takes clients: wait until the member of staff can
        # connect (a client refused in that moment would give up at once).
        wait_for(
            lambda: self.as_user(["xdotool", "getdisplaygeometry"]).returncode == 0,
            15,
            lambda: f"cannot connect to Xvfb on {self.display}",
        )

    def _start_bus(self) -> None:
        script = self.workdir / "record.sh"
        script.write_text(RECORD_SCRIPT.format(log=self.notes))
        script.chmod(0o755)
        self.notes.touch()
        os.chown(self.notes, self.uid, self.uid)
        rc = self.workdir / "dunstrc"
        rc.write_text(DUNSTRC.format(script=script))
        address = self.workdir / "bus-address"
        config = self.workdir / "bus.conf"
        config.write_text(BUS_CONFIG.format(socket=self._home / "run" / "bus"))
        inner = f'printf "%s" "$DBUS_SESSION_BUS_ADDRESS" > {address}; exec dunst -config {rc}'
        dunst_log = self.workdir / "dunst.log"
        command = ["dbus-run-session", f"--config-file={config}", "--", "sh", "-c", inner]
        self._procs.append(self._spawn(command, log=dunst_log))
        wait_for(lambda: address.exists() and address.stat().st_size > 0, 15, lambda: "no bus")
        self.bus_address = address.read_text()
        wait_for(self._dunst_ready, 15, lambda: f"dunst did not start: {dunst_log.read_text()}")

    def _dunst_ready(self) -> bool:
        """Whether dunst owns the notification service's name (asked without activating it)."""
        done = self.as_user([*NAME_HAS_OWNER, "string:org.freedesktop.Notifications"])
        return done.returncode == 0 and "boolean true" in done.stdout

    def env(self) -> dict[str, str]:
        """The environment of a program on this screen, as the member of staff."""
        return {
            **real_env(),
            "DISPLAY": self.display,
            "HOME": str(self._home),
            "XDG_RUNTIME_DIR": str(self._home / "run"),
            "DBUS_SESSION_BUS_ADDRESS": self.bus_address,
            "NO_AT_BRIDGE": "1",
            "LANG": "C.UTF-8",
        }

    def _as_user(self, command: list[str]) -> list[str]:
        if self.uid == os.getuid():
            return command
        ids = [f"--reuid={self.uid}", f"--regid={self.uid}", "--clear-groups"]
        return ["setpriv", *ids, *command]

    def _spawn(
        self, command: list[str], log: Path | None = None, display: bool = True
    ) -> subprocess.Popen[bytes]:
        env = self.env()
        if not display:
            del env["DISPLAY"]
        with (log or self.workdir / f"{command[0]}.log").open("ab") as out:
            return subprocess.Popen(
                self._as_user(command),
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                cwd=self._home,
            )

    def as_user(self, command: list[str]) -> subprocess.CompletedProcess[str]:
        """Run a program on this screen as the member of staff."""
        return subprocess.run(
            self._as_user(command),
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )

    def start_tray(
        self, socket: Path, display: bool = True, backend: str | None = None, bus: bool = True
    ) -> subprocess.Popen[bytes]:
        """The real guard-tray, as the member of staff, talking to `socket` (without a display
        to show it on, when `display` is False: a session with no graphics; with pystray's
        `backend` when given, else the one the tray chooses; with no session bus to reach
        when `bus` is False)."""
        command = [str(BIN / "guard-tray"), "--socket", str(socket), "--verbose"]
        if backend is not None:
            command = ["env", f"PYSTRAY_BACKEND={backend}", *command]
        if not bus:
            command = ["env", "DBUS_SESSION_BUS_ADDRESS=unix:path=/nonexistent/bus", *command]
        self.tray = self._spawn(command, log=self.tray_log, display=display)
        return self.tray

    def stop_tray(self) -> None:
        """Stop guard-tray (SIGTERM, as a session ending does)."""
        _kill(self.tray)
        self.tray = None

    def stop(self) -> None:
        """Everything down, newest first."""
        self.stop_tray()
        for proc in reversed(self._procs):
            _kill(proc)

    # -- looking and acting ---------------------------------------------------------------

    def xdotool(self, *args: str) -> str:
        """Run xdotool on this screen; its output."""
        done = subprocess.run(
            ["xdotool", *args],
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        return done.stdout.strip()

    def window(self, name: str) -> str | None:
        """The id of a visible window whose name matches (a regular expression), or None."""
        found = self.xdotool("search", "--onlyvisible", "--name", name)
        return found.splitlines()[0] if found else None

    def screenshot(self, path: Path | None = None) -> Image.Image:
        """The whole screen now (saved to `path` too when given)."""
        target = path or self.workdir / "screen.png"
        target.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            ["import", "-window", "root", str(target)],
            env=self.env(),
            check=True,
            capture_output=True,
            timeout=30,
        )
        with Image.open(target) as image:
            return image.convert("RGB")

    def find_colour(self, colour: str, box: tuple[int, int, int, int]) -> tuple[int, int] | None:
        """The centre of the pixels of `colour` (within a small tolerance) inside `box`."""
        want = _hex(colour)
        image = self.screenshot().crop(box)
        raw = image.tobytes()  # RGB, row by row
        points = [
            (i % image.width, i // image.width)
            for i in range(image.width * image.height)
            if all(abs(raw[3 * i + k] - want[k]) <= 12 for k in range(3))
        ]
        if len(points) < 20:
            return None
        x = sum(p[0] for p in points) // len(points) + box[0]
        y = sum(p[1] for p in points) // len(points) + box[1]
        return x, y

    def wait_icon(self, colour: str, timeout: float = 20) -> tuple[int, int]:
        """Wait until the tray shows the shield in `colour`; where it is."""
        found: list[tuple[int, int]] = []

        def shown() -> bool:
            spot = self.find_colour(colour, (0, 0, WIDTH, TRAY_BAND))
            if spot is not None:
                found.append(spot)
            return spot is not None

        wait_for(shown, timeout, lambda: f"no {colour} shield in the tray:\n{self.log()}")
        return found[-1]

    def light_pixels(self, box: tuple[int, int, int, int]) -> int:
        """How many near-white pixels are in `box` (menus and dialogs are light)."""
        image = self.screenshot().crop(box).convert("L")
        return sum(1 for v in image.tobytes() if v > 200)

    def notifications(self) -> list[str]:
        """'title<TAB>body' of every notification dunst showed, oldest first."""
        return self.notes.read_text(errors="replace").splitlines()

    def wait_log(self, text: str, timeout: float = 30) -> None:
        """Wait until the tray's log says `text`."""
        wait_for(
            lambda: text in self.log(),
            timeout,
            lambda: f"the tray never said {text!r}:\n{self.log()}",
        )

    def wait_notification(self, title: str, timeout: float = 30) -> str:
        """Wait until dunst showed a notification with this title; its body."""
        found: list[str] = []

        def seen() -> bool:
            found[:] = [n.split("\t", 1)[1] for n in self.notifications() if n.startswith(title)]
            return bool(found)

        wait_for(
            seen,
            timeout,
            lambda: f"no {title!r} notification: {self.notifications()}\n{self.log()}",
        )
        return found[0]

    def log(self) -> str:
        """The tray's log so far."""
        return self.tray_log.read_text(errors="replace") if self.tray_log.exists() else ""


def until(condition: Callable[[], bool], timeout: float, why: str) -> None:
    """wait_for with a fixed explanation."""
    wait_for(condition, timeout, lambda: why)
