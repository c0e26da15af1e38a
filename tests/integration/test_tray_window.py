"""The real tray on a virtual screen, against a real guardd under umockdev: the icon appears,
a right click opens its menu, "Request an exception..." opens the dialog, which xdotool fills
in, guard-admin lists the request, IT approve it with a real GPG key, and dunst shows the
notification. Screenshots go to tests/artefacts/ (ignored by git).

Skipped, saying why, only when Xvfb is missing (`make venv` installs it and the rest).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import GuarddFactory
from exposure_support import CLEAN_FILES, Drive, clamd, make_medium, media
from test_signing_support import Homes, homes_fixture

from guardd.exchange.spool import Spool
from guardd.ipc.client import Client
from signing import Gpg, make_approval, seal
from sim.clamd import EICAR, ClamdProcess
from sim.daemon import GuarddProcess
from sim.media import LoopMedium
from sim.screen import WIDTH, Screen, missing_tools, until
from sim.usb import UsbTestbed, stick
from tray.link import snapshot
from tray.menu import POLICY_LABEL, REQUEST_LABEL, build_menu
from tray.messages import COLOURS
from tray.state import Status

__all__ = ["clamd", "homes_fixture", "media"]

BIN = Path(sys.executable).parent
ARTEFACTS = Path(__file__).resolve().parents[1] / "artefacts"
NOBODY = 65534
MENU_BOX = (WIDTH - 560, 32, WIDTH, 330)


def _screen(world: Path, tray_host: bool) -> Iterator[Screen]:
    missing = missing_tools()
    if "Xvfb" in missing:
        pytest.skip("no virtual screen: Xvfb is not installed (make venv installs it)")
    if missing:  # a screen but not the rest: the Makefile installs them all, so that is a fault
        pytest.fail(f"{', '.join(missing)} not installed: run make venv")
    shown = Screen(world / "screen", NOBODY, tray_host=tray_host)
    try:
        shown.start()
        yield shown
    finally:
        shown.stop()


@pytest.fixture
def screen(world: Path) -> Iterator[Screen]:
    """A virtual screen with a tray host and dunst, for `nobody`."""
    yield from _screen(world, tray_host=True)


@pytest.fixture
def bare_screen(world: Path) -> Iterator[Screen]:
    """A virtual screen with dunst but no tray host (a desktop without a system tray)."""
    yield from _screen(world, tray_host=False)


def admin(daemon: GuarddProcess, *args: str, gnupghome: Path | None = None) -> str:
    env = dict(os.environ)
    if gnupghome is not None:
        env["GNUPGHOME"] = str(gnupghome)
    done = subprocess.run(
        [str(BIN / "guard-admin"), "--config", str(daemon.config), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=env,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def trust_it(daemon: GuarddProcess, homes: Homes, world: Path) -> tuple[Path, str]:
    """An IT approver's key, trusted by this guardd; its GNUPGHOME and fingerprint."""
    it = homes.keyring()
    fpr = it.new_key("IT Approver")
    (world / "it.asc").write_bytes(it.public(fpr))
    admin(daemon, "keys", "add", str(world / "it.asc"))
    admin(daemon, "reload")
    return it.home, fpr


def presses_to(daemon: GuarddProcess, label: str) -> int:
    """How many Down presses select `label` in the menu the tray builds for guardd's state
    now (a GTK menu skips lines that cannot be chosen)."""
    menu = build_menu(snapshot(Client(daemon.socket)))
    enabled = [e.label for e in menu if e.enabled]
    return enabled.index(label) + 1


def open_menu(screen: Screen, spot: tuple[int, int]) -> None:
    before = screen.light_pixels(MENU_BOX)
    screen.xdotool("mousemove", str(spot[0]), str(spot[1]), "click", "3")
    until(lambda: screen.light_pixels(MENU_BOX) > before + 5000, 15, "the menu did not open")


def requests_listed(daemon: GuarddProcess) -> list[dict[str, object]]:
    return list(json.loads(admin(daemon, "requests", "--json")))


def test_staff_ask_for_an_exception_from_the_tray_and_hear_it_was_approved(
    testbed: UsbTestbed, guardd: GuarddFactory, homes: Homes, world: Path, screen: Screen
) -> None:
    daemon = guardd()
    it_home, _ = trust_it(daemon, homes, world)
    screen.start_tray(daemon.socket)
    spot = screen.wait_icon(COLOURS[Status.OK])
    screen.screenshot(ARTEFACTS / "tray-icon-all-well.png").crop((WIDTH - 200, 0, WIDTH, 40)).save(
        ARTEFACTS / "tray-icon.png"
    )

    # A stick the school did not issue: the shield turns orange and says why.
    testbed.plug(stick("CLERK-STICK-7"), port="1")
    daemon.wait_verdict("2-1", "blocked")
    spot = screen.wait_icon(COLOURS[Status.BLOCKED])
    body = screen.wait_notification("QEMU QEMU USB HARDDRIVE blocked")
    assert "Request an exception..." in body

    # Right click: the menu, with the device, its verdict and why.
    open_menu(screen, spot)
    screen.screenshot(ARTEFACTS / "tray-menu.png")

    # "Request an exception..." opens the dialog; xdotool fills it in.
    screen.xdotool("key", "--delay", "60", *["Down"] * presses_to(daemon, REQUEST_LABEL))
    screen.xdotool("key", "Return")
    until(lambda: screen.window("^Request an exception$") is not None, 15, "no dialog")
    dialog = screen.window("^Request an exception$")
    assert dialog is not None
    screen.xdotool("windowfocus", "--sync", dialog)
    screen.xdotool("type", "--delay", "20", "governors' papers from the clerk")
    typed = screen.screenshot().tobytes()
    screen.xdotool("key", "alt+r")  # "Only to _read files from it": the box is ticked
    until(lambda: screen.screenshot().tobytes() != typed, 15, "read-only not ticked")
    screen.screenshot(ARTEFACTS / "tray-dialog.png")
    screen.xdotool("key", "alt+s")  # "_Send request"
    screen.wait_notification("Request sent to IT")

    # guard-admin lists it: made by nobody, for this stick, read-only, with the reason typed.
    until(lambda: len(requests_listed(daemon)) == 1, 15, "guard-admin lists no request")
    [request] = requests_listed(daemon)
    assert (request["user"], request["state"], request["read_only"]) == ("nobody", "pending", True)
    assert request["reason"] == "governors' papers from the clerk"
    assert request["duration_s"] == 86400
    assert request["device"]["serial"] == "CLERK-STICK-7"  # type: ignore[index]

    # IT approve it with a real signature: staff are told, and the shield turns green.
    admin(daemon, "approve", str(request["id"]), gnupghome=it_home)
    body = screen.wait_notification("Request approved")
    assert "read files only" in body
    daemon.wait_verdict("2-1", "allowed", timeout=20)
    screen.wait_icon(COLOURS[Status.OK])
    screen.screenshot(ARTEFACTS / "tray-approved.png")
    assert screen.log().count("Traceback") == 0, screen.log()


def staff_request(daemon: GuarddProcess, device: str) -> str:
    done = subprocess.run(
        [
            *("setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"),
            *(str(BIN / "guardctl"), "--socket", str(daemon.socket), "request", device, "--json"),
            *("--reason", "exam papers"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return str(json.loads(done.stdout)["id"])


def test_denials_approvals_ending_soon_and_ended_are_told(
    testbed: UsbTestbed, guardd: GuarddFactory, homes: Homes, world: Path, screen: Screen
) -> None:
    daemon = guardd()
    it_home, fpr = trust_it(daemon, homes, world)
    testbed.plug(stick("CLERK-STICK-5"), port="1")
    testbed.plug(stick("CLERK-STICK-6"), port="2")
    daemon.wait_verdict("2-1", "blocked")
    daemon.wait_verdict("2-2", "blocked")
    screen.start_tray(daemon.socket)
    screen.wait_icon(COLOURS[Status.BLOCKED])
    denied, short = staff_request(daemon, "2-1"), staff_request(daemon, "2-2")
    admin(daemon, "deny", denied, "--reason", "please use the school's OneDrive", gnupghome=it_home)
    body = screen.wait_notification("Request denied")
    assert "please use the school's OneDrive" in body
    # A six-second approval (made with the library the admin CLI uses; its minimum is 5 min).
    spool = Spool(daemon.state_dir / "exchange")
    [entry] = [e for e in spool.read_all("requests") if e.name == f"{short}.json"]
    assert entry.document is not None
    doc = make_approval(
        entry.document, approver_fpr=fpr, duration_s=6, read_only=False, now=time.time()
    )
    spool.write("approvals", doc.id, json.loads(seal(doc, Gpg(it_home), fpr)))
    screen.wait_notification("Request approved")
    assert "save your work" in screen.wait_notification("Your exception ends soon")
    assert "blocked again" in screen.wait_notification("Exception ended", timeout=40)
    titles = [n.split("\t")[0] for n in screen.notifications()]
    assert titles.count("Request approved") == 1  # each said once
    assert titles.count("Your exception ends soon") == 1


@pytest.mark.parametrize("backend", ["gtk", "appindicator"])
def test_each_backend_shows_the_icon_its_menu_and_the_policy(
    testbed: UsbTestbed, guardd: GuarddFactory, screen: Screen, backend: str
) -> None:
    daemon = guardd()
    testbed.plug(stick("CLERK-STICK-4"), port="1")
    daemon.wait_verdict("2-1", "blocked")
    screen.start_tray(daemon.socket, backend=backend)
    spot = screen.wait_icon(COLOURS[Status.BLOCKED])
    screen.wait_log(f"pystray's {backend} backend")
    open_menu(screen, spot)
    screen.xdotool("key", "--delay", "60", *["Down"] * presses_to(daemon, POLICY_LABEL))
    screen.xdotool("key", "Return")
    until(lambda: screen.window("^What is this\\?$") is not None, 15, "no policy window")
    screen.screenshot(ARTEFACTS / f"tray-policy-{backend}.png")


def test_the_icon_says_when_guardd_is_gone_and_comes_back_by_itself(
    testbed: UsbTestbed, guardd: GuarddFactory, screen: Screen
) -> None:
    daemon = guardd()
    testbed.plug(stick("CLERK-STICK-8"), port="1")
    daemon.wait_verdict("2-1", "blocked")
    screen.start_tray(daemon.socket)
    screen.wait_icon(COLOURS[Status.BLOCKED])
    daemon.stop()
    spot = screen.wait_icon(COLOURS[Status.OFFLINE])
    open_menu(screen, spot)
    screen.screenshot(ARTEFACTS / "tray-offline-menu.png")
    screen.xdotool("key", "Escape")
    daemon.start()
    screen.wait_icon(COLOURS[Status.BLOCKED])
    log = screen.log()
    assert log.count("guardd cannot be reached") == 1, log  # said once, not once per retry
    assert log.count("connected to guardd") == 2, log


def test_without_a_display_it_says_so_once_and_notifications_still_work(
    testbed: UsbTestbed, guardd: GuarddFactory, screen: Screen
) -> None:
    daemon = guardd()
    screen.start_tray(daemon.socket, display=False)
    screen.wait_log("guardd answers: USB guard: all is well")  # its first state: no news yet
    testbed.plug(stick("CLERK-STICK-9"), port="1")
    daemon.wait_verdict("2-1", "blocked")
    assert "cannot be used" in screen.wait_notification("QEMU QEMU USB HARDDRIVE blocked")
    log = screen.log()
    assert log.count("no tray can show the icon here") == 1, log
    assert "there is no screen to show it on" in log
    assert "sends its messages as desktop notifications" in log
    assert "Traceback" not in log, log


def test_with_no_system_tray_it_says_so_once_and_notifications_still_work(
    testbed: UsbTestbed, guardd: GuarddFactory, bare_screen: Screen
) -> None:
    daemon = guardd()
    bare_screen.start_tray(daemon.socket)
    bare_screen.wait_log("guardd answers: USB guard: all is well")
    bare_screen.wait_log("no system tray is showing the icon")
    testbed.plug(stick("CLERK-STICK-9"), port="1")
    daemon.wait_verdict("2-1", "blocked")
    bare_screen.wait_notification("QEMU QEMU USB HARDDRIVE blocked")
    assert bare_screen.log().count("no system tray is showing the icon") == 1


def test_a_drive_being_scanned_shows_progress_then_is_ready(
    testbed: UsbTestbed,
    guardd: GuarddFactory,
    clamd: ClamdProcess,
    world: Path,
    media: list[LoopMedium],
    screen: Screen,
) -> None:
    daemon = guardd(clamd_socket=clamd.socket)
    screen.start_tray(daemon.socket)
    screen.wait_icon(COLOURS[Status.OK])
    files: dict[str | bytes, bytes] = {
        f"class{i % 30}/pupil{i}.txt": f"essay {i}\n".encode() * 20 for i in range(3000)
    }
    drive = Drive(testbed, daemon, make_medium(world, media, files))
    drive.unlock()
    drive.open(world)
    spot = screen.wait_icon(COLOURS[Status.SCANNING], timeout=30)
    screen.wait_log(" of 3,000 files)")  # the progress, read every second while it scans
    open_menu(screen, spot)
    screen.screenshot(ARTEFACTS / "tray-scanning-menu.png")
    screen.xdotool("key", "Escape")
    daemon.wait_verdict("2-1", "ready", timeout=120)
    screen.wait_icon(COLOURS[Status.OK])
    assert "is ready to use" in screen.wait_notification("Drive checked: no viruses")


def test_an_infected_drive_turns_the_shield_red_and_says_what_to_do(
    testbed: UsbTestbed,
    guardd: GuarddFactory,
    clamd: ClamdProcess,
    world: Path,
    media: list[LoopMedium],
    screen: Screen,
) -> None:
    daemon = guardd(clamd_socket=clamd.socket)
    screen.start_tray(daemon.socket)
    screen.wait_icon(COLOURS[Status.OK])
    drive = Drive(testbed, daemon, make_medium(world, media, {**CLEAN_FILES, "game.com": EICAR}))
    drive.unlock()
    drive.open(world)
    daemon.wait_verdict("2-1", "infected", timeout=30)
    screen.wait_icon(COLOURS[Status.INFECTED])
    body = screen.wait_notification("Virus found: drive switched off")
    assert "(1 file)" in body
    assert "nothing on it was deleted" in body
    screen.screenshot(ARTEFACTS / "tray-infected.png")


def test_without_a_session_bus_the_icon_still_shows(
    testbed: UsbTestbed, guardd: GuarddFactory, screen: Screen
) -> None:
    daemon = guardd()
    screen.start_tray(daemon.socket, bus=False)
    screen.wait_icon(COLOURS[Status.OK])
    testbed.plug(stick("CLERK-STICK-3"), port="1")
    daemon.wait_verdict("2-1", "blocked")
    screen.wait_icon(COLOURS[Status.BLOCKED])
    screen.wait_log("cannot show desktop notifications")
    assert screen.log().count("cannot show desktop notifications") == 1
    assert "Traceback" not in screen.log()
