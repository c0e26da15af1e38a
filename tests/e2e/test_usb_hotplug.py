"""guardd installed by `make install` in a Debian guest under QEMU, judging real USB hot-plugs.

One boot serves every scenario, in the order written (each leaves the guest as the next
expects). Sticks are QEMU usb-storage devices plugged through QMP; the kernel, udev,
dm-crypt, clamd, gpg and systemd are the guest's own.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from sim import sticks
from sim.clamd import EICAR
from sim.daemon import wait_for
from sim.guest_guardd import GuestGuardd

KEY = "/root/stick.key"
ARTEFACTS = Path(__file__).resolve().parent.parent / "artefacts"
RULES = "".join(
    f'\n[[drive]]\nserial = "{serial}"\nvendor_id = "46f4"\nproduct_id = "0001"\n'
    f'label = "{label}"\n'
    for serial, label in (
        ("SCHOOL-LUKS-1", "Office stick (LUKS, clean)"),
        ("SCHOOL-LUKS-2", "Office stick (LUKS, EICAR on it)"),
        ("SCHOOL-PLAIN-1", "Office stick (never encrypted)"),
        ("SCHOOL-LATE-1", "Office stick plugged while guardd is stopped"),
    )
)


@pytest.fixture(scope="module")
def images(workdir: Path) -> dict[str, Path]:
    """The sticks' disk images (made on the host)."""
    key = workdir / "stick.key"
    return {
        "blank": sticks.blank(workdir / "blank.img"),
        "blank2": sticks.blank(workdir / "blank2.img"),
        "luks": sticks.luks(workdir / "luks.img", {"report.txt": b"minutes\n"}, key),
        "eicar": sticks.luks(workdir / "eicar.img", {"docs/eicar.com": EICAR}, key),
        "plain": sticks.ext4(workdir / "plain.img", {"notes.txt": b"plain\n"}),
        "late": sticks.luks(workdir / "late.img", {"a.txt": b"late\n"}, key),
    }


@pytest.fixture(scope="module")
def school(gd: GuestGuardd, images: dict[str, Path]) -> GuestGuardd:
    """guardd with the school's enrolled drives, and the LUKS key in the guest."""
    del images
    gd.a.write_file(KEY, sticks.KEY, mode=0o600)
    gd.set_rules(RULES)
    return gd


def open_and_mount(gd: GuestGuardd, device: str, name: str) -> str:
    """Unlock the stick with cryptsetup and mount it, as a desktop would; the mount point."""
    disk = gd.wait_disk(device)
    gd.a.run("cryptsetup", "open", "--key-file", KEY, f"/dev/{disk}", name)
    mount = f"/mnt/{name}"
    gd.a.run("mkdir", "-p", mount)
    gd.a.run("mount", f"/dev/mapper/{name}", mount)
    return mount


def close(gd: GuestGuardd, name: str) -> None:
    """Unmount and lock a stick again (tolerant: it may be switched off already)."""
    gd.a.sh(f"umount -l /mnt/{name}; cryptsetup close {name}", check=False)


def test_installed_service_is_ready_and_hardened(gd: GuestGuardd) -> None:
    a = gd.a
    show = a.sh("systemctl show guardd -p Type -p StatusText -p NRestarts -p ActiveState")
    assert "Type=notify" in show
    assert "ActiveState=active" in show
    assert "StatusText=guarding" in show  # sent by guardd itself (sd_notify STATUS=)
    defaults = a.sh("cat /sys/bus/usb/devices/usb*/authorized_default").split()
    assert defaults
    assert set(defaults) == {"0"}
    # Audit records reach the journal with fields of their own.
    entries = a.sh("journalctl -u guardd GUARDD_EVENT=daemon.started -o json --no-pager")
    started = [json.loads(line) for line in entries.splitlines() if line.strip()]
    assert started
    assert started[-1]["GUARDD_EVENT"] == "daemon.started"
    assert started[-1]["SYSLOG_IDENTIFIER"] == "guardd"
    pid = a.sh("systemctl show -p MainPID --value guardd").strip()
    # Its holds must change staff's mounts: guardd shares the machine's mount namespace.
    assert a.sh(f"readlink /proc/{pid}/ns/mnt") == a.sh("readlink /proc/1/ns/mnt")
    caps = a.sh(f"grep CapBnd /proc/{pid}/status").split()
    # SYS_ADMIN, DAC_READ_SEARCH, FOWNER, CHOWN: nothing else
    assert int(caps[1], 16) == (1 << 21) | (1 << 2) | (1 << 3) | (1 << 0)
    # The tray's command and its autostart file, as the checkout has the tray.
    assert a.sh("readlink /usr/local/bin/guard-tray").strip() == "/opt/guardd/bin/guard-tray"
    assert "guard-tray" in a.sh("cat /etc/xdg/autostart/guard-tray.desktop")
    security = a.run("systemd-analyze", "security", "guardd", "--no-pager", check=False)["stdout"]
    assert "Overall exposure level for guardd.service" in security
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    (ARTEFACTS / "e2e-systemd-analyze-security.txt").write_text(security)


def test_unknown_stick_stays_unauthorised(school: GuestGuardd, images: dict[str, Path]) -> None:
    since = school.uevent_mark()
    plug = school.plug("stranger", images["blank"], "STRANGER-1")
    assert (plug.verdict, school.authorized(plug.device)) == ("blocked", "0")
    time.sleep(3)  # udev and the kernel had every chance to bring up a disk
    assert school.interfaces(plug.device) == []
    assert school.disks(plug.device) == []
    assert school.uevents_under(plug.device, since) == []  # never an interface or a disk


def test_enrolled_luks_stick_is_scanned_and_ready(
    school: GuestGuardd, images: dict[str, Path]
) -> None:
    plug = school.plug("luks1", images["luks"], "SCHOOL-LUKS-1")
    assert plug.verdict == "allowed"
    offset = school.mark()
    mount = open_and_mount(school, plug.device, "luks1")
    ready = school.wait_record(offset, "media.ready", "SCHOOL-LUKS-1", timeout=180)
    assert ready["device"] == plug.device
    assert school.device("SCHOOL-LUKS-1")["verdict"] == "ready"
    assert school.a.run("cat", f"{mount}/report.txt")["stdout"] == "minutes\n"


def test_eicar_on_an_enrolled_luks_stick_gets_it_switched_off(
    school: GuestGuardd, images: dict[str, Path]
) -> None:
    plug = school.plug("luks2", images["eicar"], "SCHOOL-LUKS-2")
    assert plug.verdict == "allowed"
    offset = school.mark()
    open_and_mount(school, plug.device, "luks2")
    infected = school.wait_record(offset, "media.infected", "SCHOOL-LUKS-2", timeout=180)
    assert "Eicar-Test-Signature" in json.dumps(infected["scan"])
    assert school.authorized(plug.device) == "0"
    assert school.interfaces(plug.device) == []
    assert school.device("SCHOOL-LUKS-2")["verdict"] == "infected"
    close(school, "luks2")


def test_enrolled_plain_ext4_stick_is_switched_off_when_its_volume_is_seen(
    school: GuestGuardd, images: dict[str, Path]
) -> None:
    offset = school.mark()
    plug = school.plug("plain1", images["plain"], "SCHOOL-PLAIN-1")
    assert plug.verdict == "allowed"  # enrolled: let in until its volume shows what it is
    volume = school.wait_record(offset, "volume.decision", "SCHOOL-PLAIN-1")
    assert volume["fs_type"] == "ext4"
    wait_for(
        lambda: school.authorized(plug.device) == "0", 20, lambda: "not switched off", interval=0.3
    )
    device = school.device("SCHOOL-PLAIN-1")
    assert device["verdict"] == "blocked"
    assert "encrypt" in device["reason"]


def test_stick_plugged_while_guardd_is_stopped_stays_off_until_judged(
    school: GuestGuardd, images: dict[str, Path]
) -> None:
    school.a.run("systemctl", "stop", "guardd")
    assert set(school.a.sh("cat /sys/bus/usb/devices/usb*/authorized_default").split()) == {"0"}
    since = school.uevent_mark()
    school.guest.plug("late1", images["late"], "SCHOOL-LATE-1")
    wait_for(
        lambda: school.device_by_serial("SCHOOL-LATE-1"),
        20,
        lambda: "the stick never appeared",
        interval=0.3,
    )
    device = school.device_by_serial("SCHOOL-LATE-1")
    time.sleep(3)
    assert school.authorized(device) == "0"
    assert school.uevents_under(device, since) == []
    offset = school.mark()
    school.a.run("systemctl", "start", "guardd")  # Type=notify: returns once guardd is ready
    decided = school.wait_record(offset, "device.decision", "SCHOOL-LATE-1")
    assert decided["verdict"] == "allowed"
    wait_for(lambda: school.interfaces(device) != [], 20, lambda: "not on", interval=0.3)


def test_refuses_to_start_beside_usbguard(school: GuestGuardd) -> None:
    a = school.a
    a.run("systemctl", "start", "usbguard")
    try:
        offset = school.mark()
        started = a.run("systemctl", "restart", "guardd", check=False)
        assert started["rc"] != 0
        show = a.sh("systemctl show guardd -p ExecMainStatus -p ActiveState -p NRestarts")
        assert "ExecMainStatus=2" in show
        assert "ActiveState=failed" in show
        assert "NRestarts=0" in show  # RestartPreventExitStatus=2: no restart loop
        said = a.sh("journalctl -u guardd -o cat --no-pager | grep 'refusing to start'")
        assert "USBGuard (usbguard-daemon, pid" in said
        refused = school.wait_record(offset, "daemon.refused", "usbguard-running", timeout=5)
        assert refused["pid"] > 1
    finally:
        a.run("systemctl", "stop", "usbguard")
        a.run("systemctl", "reset-failed", "guardd", check=False)
        a.run("systemctl", "start", "guardd")
    school.wait_active()


def test_unplug_and_replug_keep_the_right_state(
    school: GuestGuardd, images: dict[str, Path]
) -> None:
    close(school, "luks1")
    for qemu_id in ("stranger", "luks1", "plain1"):
        school.guest.unplug(qemu_id)
    since = school.uevent_mark()
    stranger = school.plug("stranger", images["blank"], "STRANGER-1")
    assert stranger.verdict == "blocked"
    luks = school.plug("luks1", images["luks"], "SCHOOL-LUKS-1")
    assert luks.verdict == "allowed"
    wait_for(
        lambda: school.disks(luks.device) != [],
        30,
        lambda: "the LUKS stick's disk is missing",
        interval=0.3,
    )
    offset = school.mark()
    plain = school.plug("plain1", images["plain"], "SCHOOL-PLAIN-1")
    school.wait_record(offset, "volume.decision", "SCHOOL-PLAIN-1")
    wait_for(
        lambda: school.authorized(plain.device) == "0",
        20,
        lambda: "plain stick not switched off",
        interval=0.3,
    )
    assert school.device("SCHOOL-PLAIN-1")["verdict"] == "blocked"
    time.sleep(2)
    assert school.uevents_under(stranger.device, since) == []
    assert school.authorized(stranger.device) == "0"


def test_signed_approval_lets_a_blocked_stick_in_and_expiry_switches_it_off(
    school: GuestGuardd, images: dict[str, Path]
) -> None:
    a = school.a
    home = "GNUPGHOME=/root/it-gnupg"
    a.sh(
        f"mkdir -p -m 700 /root/it-gnupg && {home} gpg --batch --passphrase '' "
        "--quick-gen-key 'IT Approver <it@school.example>' ed25519 sign 1d && "
        f"{home} gpg --armor --export > /root/it.asc"
    )
    a.run("guard-admin", "keys", "add", "/root/it.asc")
    a.run("guard-admin", "reload")
    plug = school.plug("visitor", images["blank2"], "VISITOR-1")
    assert plug.verdict == "blocked"
    asked = a.run(
        "guardctl", "request", plug.device, "--reason", "exam papers", "--for", "1d", "--json"
    )
    request_id = json.loads(asked["stdout"])["id"]
    offset = school.mark()
    a.sh(f"{home} guard-admin approve {request_id} --for 10m")
    admitted = school.wait_record(offset, "device.decision", "VISITOR-1", timeout=30)
    assert admitted["verdict"] == "allowed"
    assert str(admitted["rule"]).startswith("approval:")
    wait_for(
        lambda: school.authorized(plug.device) == "1", 20, lambda: "not switched on", interval=0.3
    )
    # Eleven minutes pass (the guest's clock is moved on): the approval has ended.
    offset = school.mark()
    a.sh("date -s @$(( $(date +%s) + 660 ))")
    ended = school.wait_record(offset, "device.decision", "VISITOR-1", timeout=30)
    assert ended["verdict"] == "blocked"
    wait_for(
        lambda: school.authorized(plug.device) == "0",
        20,
        lambda: "not switched off at expiry",
        interval=0.3,
    )
    assert school.interfaces(plug.device) == []


def test_cloud_guard_blocks_a_sync_folder_in_a_home_under_the_hardened_unit(
    school: GuestGuardd,
) -> None:
    a = school.a
    a.run("useradd", "--create-home", "--uid", "1500", "teacher")
    offset = school.mark()
    a.run(
        "runuser",
        "-u",
        "teacher",
        "--",
        "sh",
        "-c",
        "mkdir -p ~/Dropbox && touch ~/Dropbox/.dropbox ~/Dropbox/.dropbox.cache && "
        "echo marks > ~/Dropbox/marks.txt",
    )
    blocked = school.wait_record(offset, "cloud.blocked", "/home/teacher/Dropbox", timeout=60)
    assert blocked["provider"] == "dropbox"
    assert a.sh("stat -c '%u %a' /home/teacher/Dropbox").strip() == "0 0"
    denied = a.run("runuser", "-u", "teacher", "--", "ls", "/home/teacher/Dropbox", check=False)
    assert denied["rc"] != 0
    assert a.sh("cat /home/teacher/Dropbox/marks.txt") == "marks\n"  # untouched, as root sees


def test_uninstall_leaves_usb_in_the_documented_state(school: GuestGuardd) -> None:
    a = school.a
    blocked = [school.device_by_serial(s) for s in ("STRANGER-1", "VISITOR-1")]
    assert all(blocked)
    a.run("make", "-C", "/root/guardd-src", "uninstall", timeout=120)
    assert a.sh("systemctl is-active guardd", check=False).strip() in ("inactive", "unknown")
    assert (
        a.sh("ls /etc/systemd/system/guardd.service /opt/guardd 2>&1", check=False).count(
            "No such file"
        )
        == 2
    )
    assert a.sh("command -v guardctl guard-admin guardd", check=False).strip() == ""
    # Controllers back to the kernel's default; what guardd switched off stays off.
    assert set(a.sh("cat /sys/bus/usb/devices/usb*/authorized_default").split()) == {"1"}
    assert [school.authorized(d) for d in blocked] == ["0", "0"]
    # Config and the audit trail are kept.
    assert a.sh("ls /etc/guardd/guardd.toml /var/lib/guardd/audit.jsonl").split() == [
        "/etc/guardd/guardd.toml",
        "/var/lib/guardd/audit.jsonl",
    ]
    assert "AlertExceedsMax" not in a.sh("cat /etc/clamav/clamd.conf")
