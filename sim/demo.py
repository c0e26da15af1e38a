"""`make demo`: a narrated day at a staff machine, on simulated hardware (umockdev).

A real guardd runs against a mock /sys; sticks are plugged and unplugged the way a real kernel
announces them; what staff and IT see is what the real CLIs print.
"""

from __future__ import annotations

import gc
import json
import shutil
import signal
import stat
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from guardd.ipc.protocol import Op
from sim.clamd import EICAR, ClamdProcess
from sim.daemon import RULES_HEADER, GuarddProcess, drive_toml, wait_for
from sim.env import real_env
from sim.media import LoopMedium
from sim.usb import KEYBOARD, UsbDevice, UsbTestbed, stick

WORKDIR = Path("build/demo")
HOMES = WORKDIR / "homes"
BIN = Path(sys.executable).parent
HOME_SERIAL = "GENERIC-8GB-0042"
RULES = RULES_HEADER + "".join(
    [
        drive_toml("SCHOOL-000123", "Office stick 12"),
        drive_toml("SCHOOL-000124", "Head's encrypted stick"),
        drive_toml("SCHOOL-000125", "Exams BitLocker stick"),
        drive_toml("SCHOOL-000126", "Reception stick"),
    ]
)
HEAD_FILES: dict[str | bytes, bytes] = {
    "Governors/minutes-2026-11.odt": b"PK\x03\x04 minutes" * 200,
    "Budget/2027 draft.ods": b"PK\x03\x04 budget" * 300,
    "letter to parents.txt": b"Dear parents,\n" * 40,
}
RECEPTION_FILES: dict[str | bytes, bytes] = {
    "photos/sports day.txt": b"a lovely day\n" * 30,
    "forms/trip-consent.pdf.exe": EICAR,  # the EICAR test file: harmless, detected as a virus
}


def say(text: str) -> None:
    """A line of narration."""
    print(f"\n\033[1m==> {text}\033[0m", flush=True)


def show(*command: str, env_socket: Path | None = None, gnupghome: Path | None = None) -> str:
    """Run a real CLI and show what it prints, as the person would see it."""
    args = [str(BIN / command[0]), *command[1:]]
    if env_socket is not None:
        args[1:1] = ["--socket", str(env_socket)]
    print(f"   $ {' '.join(command)}")
    env = real_env() | ({"GNUPGHOME": str(gnupghome)} if gnupghome else {})
    out = subprocess.run(args, capture_output=True, text=True, check=False, timeout=60, env=env)
    print(textwrap.indent((out.stdout + out.stderr).rstrip(), "     "), flush=True)
    return out.stdout


def verdict_of(daemon: GuarddProcess, device_id: str, verdict: str) -> None:
    """Wait for guardd's verdict and print it the way guardctl would."""
    device = daemon.wait_verdict(device_id, verdict)
    print(f"   guardd: {device_id}: {device['reason']}")


def main() -> int:
    """Play the scenario; exit 0 when everything happened as it should."""
    shutil.rmtree(WORKDIR, ignore_errors=True)
    WORKDIR.mkdir(parents=True)
    clamd = ClamdProcess(WORKDIR.resolve() / "clamd")
    clamd.start()
    bed = UsbTestbed(buses=2)
    daemon = GuarddProcess(
        WORKDIR.resolve(), bed.root, RULES, clamd_socket=clamd.socket, homes=[HOMES.resolve()]
    )
    media: list[LoopMedium] = []
    try:
        play(bed, daemon, media)
    finally:
        daemon.stop()
        for medium in media:
            medium.close()
        clamd.stop()
        del bed
        gc.collect()
    say("Done. Everything above was decided by a real guardd on simulated USB hardware.")
    return 0


def play(bed: UsbTestbed, daemon: GuarddProcess, media: list[LoopMedium]) -> None:
    """The scenario, scene by scene."""
    morning(bed, daemon)
    container = sticks(bed, daemon)
    scanning(bed, daemon, media, container)
    virus(bed, daemon, media)
    tricks(bed, daemon)
    exception(bed, daemon)
    cloud(daemon)
    crash(bed, daemon)
    audit(daemon)


def morning(bed: UsbTestbed, daemon: GuarddProcess) -> None:
    """Start-up and a keyboard."""
    say("A staff laptop with two USB controllers. IT has enrolled four school sticks:")
    print(textwrap.indent(RULES.strip(), "     "))
    daemon.start()
    say("guardd starts and sets every controller to keep new devices OFF by default")
    for bus in (1, 2):
        value = bed.read(bed.controller(bus), "authorized_default").strip()
        print(f"   usb{bus}/authorized_default = {value}")
    say("Mrs Patel plugs in her keyboard: not storage, it just works")
    bed.plug(KEYBOARD, port="1")
    verdict_of(daemon, "2-1", "allowed")


def sticks(bed: UsbTestbed, daemon: GuarddProcess) -> str:
    """A stick from home, an encrypted school stick, an unencrypted one."""
    say("She plugs in a stick from home")
    home = bed.plug(stick(HOME_SERIAL, manufacturer="Generic", product="Flash Disk"), port="2")
    verdict_of(daemon, "2-2", "blocked")
    off = bed.read(home, "authorized").strip()
    print(f"   kernel: authorized = {off}: no driver, no disk, nothing mounts")
    say("She plugs in the head's encrypted school stick (LUKS)")
    luks = stick("SCHOOL-000124", "crypto_LUKS")
    path = bed.plug(luks, port="3")
    verdict_of(daemon, "2-3", "allowed")
    [container] = bed.add_volumes(path, luks)
    wait_for(lambda: bool((daemon.device("2-3") or {}).get("volumes")), 5, lambda: "no volume")
    print(f"   guardd: its volume is {daemon.device('2-3')['volumes'][0]['reason']}")  # type: ignore[index]
    say("An enrolled stick nobody encrypted: let in, then switched off when its volume shows")
    plain = stick("SCHOOL-000123", "vfat")
    path = bed.plug(plain, port="4")
    verdict_of(daemon, "2-4", "allowed")
    bed.add_volumes(path, plain)
    verdict_of(daemon, "2-4", "blocked")
    return container


def unlock_and_open(
    daemon: GuarddProcess, bed: UsbTestbed, container: str, medium: LoopMedium, ids: tuple[str, str]
) -> None:
    """She types the passphrase (the mapping appears) and opens the drive (it is mounted)."""
    device_id, mapping = ids
    bed.add_mapping(mapping, container, medium.devnode, medium.numbers, "ext4")
    wait_for(lambda: bool((daemon.device(device_id) or {}).get("media")), 10, lambda: "not held")
    print(f"   guardd: {device_id}: {(daemon.device(device_id) or {}).get('reason')}")
    medium.mount(WORKDIR.resolve() / "media" / mapping)


def scanning(
    bed: UsbTestbed, daemon: GuarddProcess, media: list[LoopMedium], container: str
) -> None:
    """The LUKS stick is unlocked and opened: held read-only, scanned, then ready."""
    say("She unlocks the head's stick and opens it: it stays read-only until ClamAV has scanned it")
    medium = LoopMedium.create(WORKDIR.resolve() / "head.img", HEAD_FILES)
    media.append(medium)
    unlock_and_open(daemon, bed, container, medium, ("2-3", "dm-0"))
    verdict_of(daemon, "2-3", "ready")


def virus(bed: UsbTestbed, daemon: GuarddProcess, media: list[LoopMedium]) -> None:
    """An enrolled stick with a virus on it: held, switched off, reported to IT."""
    say("Reception's school stick, used on a home computer, now carries a virus (EICAR test file)")
    luks = stick("SCHOOL-000126", "crypto_LUKS")
    path = bed.plug(luks, port="8")
    verdict_of(daemon, "2-8", "allowed")
    [container] = bed.add_volumes(path, luks)
    wait_for(lambda: bool((daemon.device("2-8") or {}).get("volumes")), 5, lambda: "no volume")
    medium = LoopMedium.create(WORKDIR.resolve() / "reception.img", RECEPTION_FILES)
    media.append(medium)
    unlock_and_open(daemon, bed, container, medium, ("2-8", "dm-1"))
    verdict_of(daemon, "2-8", "infected")
    off = bed.read(path, "authorized").strip()
    print(f"   kernel: authorized = {off}: switched off; the file itself is untouched, for IT")
    say("IT are told at once: the incident is in the exchange")
    show("guard-admin", "--config", str(daemon.config), "incidents")


def tricks(bed: UsbTestbed, daemon: GuarddProcess) -> None:
    """A BadUSB composite, a phone, and what staff see."""
    say("A 'free gift' stick that is secretly a keyboard too (a BadUSB trick)")
    bed.plug(UsbDevice(serial=b"GIFT-1", interfaces=("080650", "030101")), port="5")
    verdict_of(daemon, "2-5", "blocked")
    say("A phone connected to charge (MTP): removable media too")
    phone = UsbDevice(
        serial=b"R58M12ABCDE",
        vendor_id="04e8",
        product_id="6860",
        interfaces=("060101",),
        manufacturer="Samsung",
        product="Galaxy",
    )
    bed.plug(phone, port="6")
    verdict_of(daemon, "2-6", "blocked")
    say("What Mrs Patel sees when she asks guardctl")
    show("guardctl", "devices", env_socket=daemon.socket)
    say("She unplugs the stick from home")
    bed.unplug(bed.device_path(2, "2"))
    daemon.wait_gone("2-2")
    print("   guardd: 2-2 removed (recorded with the serial it had when it arrived)")


def it_key(home: Path) -> str:
    """IT's signing key (ed25519), made once; the demo's has no passphrase."""
    home.mkdir(mode=0o700, parents=True)
    gpg = [
        "gpg",
        "--homedir",
        str(home),
        "--batch",
        "--passphrase",
        "",
        "--pinentry-mode",
        "loopback",
    ]
    subprocess.run(
        [*gpg, "--quick-gen-key", "IT Approver <it@school.example>", "ed25519", "sign", "1y"],
        check=True,
        capture_output=True,
        timeout=60,
        env=real_env(),
    )
    listing = subprocess.run(
        [*gpg, "--with-colons", "--list-keys"],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
        env=real_env(),
    ).stdout
    fpr = next(line.split(":")[9] for line in listing.splitlines() if line.startswith("fpr:"))
    public = subprocess.run(
        [*gpg, "--armor", "--export", fpr],
        check=True,
        capture_output=True,
        timeout=60,
        env=real_env(),
    ).stdout
    (home.parent / "it-approver.asc").write_bytes(public)
    return fpr


def exception(bed: UsbTestbed, daemon: GuarddProcess) -> None:
    """The clerk's stick: requested by staff, approved by IT with a GPG signature, admitted."""
    say("IT makes a signing key once, and trusts it on the machine")
    home = WORKDIR.resolve() / "it-gnupg"
    it_key(home)
    show(
        "guard-admin",
        "--config",
        str(daemon.config),
        "keys",
        "add",
        str(home.parent / "it-approver.asc"),
    )
    show("guard-admin", "reload", env_socket=daemon.socket)
    say("The clerk brings the governors' papers on a stick of her own")
    bed.plug(stick("CLERK-2291", manufacturer="Kingston", product="DataTraveler"), port="9")
    verdict_of(daemon, "2-9", "blocked")
    say("Mrs Patel asks IT for an exception (the tray will offer the same)")
    show(
        "guardctl",
        "request",
        "2-9",
        "--reason",
        "governors' papers from the clerk",
        "--for",
        "2d",
        "--read-only",
        env_socket=daemon.socket,
    )
    say("IT reviews it and approves it, signing with their key")
    show("guard-admin", "--config", str(daemon.config), "requests")
    admin = [str(BIN / "guard-admin"), "--config", str(daemon.config), "requests", "--json"]
    listing = subprocess.run(admin, capture_output=True, text=True, check=True, timeout=60)
    request_id = str(json.loads(listing.stdout)[0]["id"])
    show("guard-admin", "--config", str(daemon.config), "approve", request_id, gnupghome=home)
    say("guardd finds the approval in the exchange, checks the signature and lets the stick in")
    verdict_of(daemon, "2-9", "allowed")
    show("guardctl", "requests", env_socket=daemon.socket)


def folder_line(folder: Path) -> str:
    """What `ls -ld` would say of a folder's access: mode and owner."""
    st = folder.stat()
    return f"{stat.filemode(st.st_mode)} owner uid {st.st_uid}"


def cloud(daemon: GuarddProcess) -> None:
    """A personal Dropbox appears in a home: blocked at once, files untouched, then approved."""
    say("Mrs Patel installs Dropbox on her school laptop; it makes its folder and fills it")
    folder = HOMES.resolve() / "mrs.patel" / "Dropbox"
    (folder / "Year 9").mkdir(parents=True)
    (folder / "Year 9" / "marks.ods").write_bytes(b"PK\x03\x04 marks" * 100)
    (folder / "holiday.jpg").write_bytes(b"\xff\xd8\xff" * 500)
    (folder / ".dropbox").write_text("{}")
    (folder / ".dropbox.cache").mkdir()
    wait_for(lambda: _cloud_state(daemon, folder) == "blocked", 5, lambda: "not blocked")
    print(f"   guardd: {folder.name}: blocked; the folder is now {folder_line(folder)}")
    print("   (Dropbox can no longer read or add files; nothing was deleted or moved)")
    show("guardctl", "cloud", env_socket=daemon.socket)
    say("She asks IT for an exception: the drama club shares scripts through it")
    show(
        "guardctl",
        "request-cloud",
        str(folder),
        "--reason",
        "scripts for the school play with the drama club",
        "--for",
        "1w",
        env_socket=daemon.socket,
    )
    admin = [str(BIN / "guard-admin"), "--config", str(daemon.config), "requests", "--json"]
    listing = subprocess.run(admin, capture_output=True, text=True, check=True, timeout=60)
    pending = [r for r in json.loads(listing.stdout) if r["state"] == "pending" and "folder" in r]
    say("IT approves it with the same signed approvals as for sticks")
    home = WORKDIR.resolve() / "it-gnupg"
    show("guard-admin", "--config", str(daemon.config), "approve", pending[0]["id"], gnupghome=home)
    wait_for(lambda: _cloud_state(daemon, folder) == "approved", 20, lambda: "not approved")
    print(f"   guardd: {folder.name}: restored exactly as it was: {folder_line(folder)}")
    files = sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))
    print(f"   her files, all still there: {', '.join(files)}")
    show("guard-admin", "cloud", env_socket=daemon.socket)


def _cloud_state(daemon: GuarddProcess, folder: Path) -> str:
    listed = daemon.client.call(Op.CLOUD, {"all": True})
    found = [f for f in listed if f.get("path") == str(folder)] if isinstance(listed, list) else []
    return str(found[0]["state"]) if found else ""


def crash(bed: UsbTestbed, daemon: GuarddProcess) -> None:
    """kill -9, a stick plugged meanwhile, and the restart."""
    say("guardd crashes (kill -9). Meanwhile the BitLocker exam stick is plugged in:")
    daemon.stop(signal.SIGKILL)
    exam = bed.plug(stick("SCHOOL-000125", "BitLocker"), port="7")
    time.sleep(0.2)
    off = bed.read(exam, "authorized").strip()
    print(f"   kernel: authorized = {off} (still off: nobody has decided yet)")
    say("guardd comes back and judges what is present")
    daemon.start()
    verdict_of(daemon, "2-7", "allowed")
    verdict_of(daemon, "2-4", "blocked")
    say("IT's view of the same machine")
    show("guard-admin", "devices", env_socket=daemon.socket)


def audit(daemon: GuarddProcess) -> None:
    """The audit trail verifies; an edited copy does not."""
    say("IT checks the audit trail: every decision, hash-chained")
    show("guard-admin", "--config", str(daemon.config), "audit", "verify")
    say("Someone edits a line to hide the home stick; verification names the record")
    tampered = WORKDIR.resolve() / "tampered"
    shutil.copytree(daemon.state_dir, tampered / "state")
    log = tampered / "state" / "audit.jsonl"
    lines = log.read_text().splitlines()
    log.write_text("".join(x.replace(HOME_SERIAL, "SCHOOL-000124", 1) + "\n" for x in lines))
    config = tampered / "guardd.toml"
    config.write_text(
        daemon.config.read_text().replace(str(daemon.state_dir), str(tampered / "state"))
    )
    show("guard-admin", "--config", str(config), "audit", "verify")


if __name__ == "__main__":
    sys.exit(main())
