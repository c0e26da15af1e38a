"""`make install` / `make uninstall`: put guardd on a Debian machine the way a package would.

Run as root with the system's /usr/bin/python3 (standard library only). `--root DIR` installs
into a staging tree instead of / (no systemctl, no USB controllers touched); the tests use it.

install:   a venv under /opt/guardd with a non-editable install of this checkout; the
           commands on PATH (/usr/local/bin symlinks); /etc/guardd/guardd.toml and rules.d/
           (never overwritten); /var/lib/guardd; the systemd unit; the tray's autostart file
           (when the checkout has one); clamd told to report files too big to scan; then the
           service enabled and (re)started.
uninstall: the service stopped and disabled, the code, commands, unit and autostart file
           removed; config (/etc/guardd) and state (/var/lib/guardd: the audit trail) kept.
           The USB controllers are left in the state the kernel gives them at boot without
           guardd: new devices allowed (authorized_default=1), while every device guardd had
           switched off stays off until it is unplugged (see README.md, "Uninstalling").
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path

CHECKOUT = Path(__file__).resolve().parent.parent
PACKAGING = CHECKOUT / "packaging"
PREFIX = Path("opt/guardd")
BIN_DIR = Path("usr/local/bin")
COMMANDS = ("guardd", "guardctl", "guard-admin", "guard-tray")
CONFIG_DIR = Path("etc/guardd")
STATE_DIR = Path("var/lib/guardd")
UNIT = Path("etc/systemd/system/guardd.service")
AUTOSTART = Path("etc/xdg/autostart/guard-tray.desktop")
CLAMD_CONF = Path("etc/clamav/clamd.conf")
CLAMD_LINE = "AlertExceedsMax true"
CLAMD_MARK = "# added by guardd's make install: files too big to scan are reported, not passed"
USB_DEVICES = Path("/sys/bus/usb/devices")
# What the installed guardd needs from Debian (a package would list them in Depends).
# The tray's GTK bindings come from Debian (python3-gi, python3-gi-cairo): a staff machine
# needs no compiler, and the venv sees them (--system-site-packages).
RUNTIME_PACKAGES = (
    "python3-venv",
    "clamav-daemon",
    "gpg",
    "gpg-agent",
    "cryptsetup-bin",
    "python3-gi",
    "python3-gi-cairo",
    "gir1.2-gtk-3.0",
    "gir1.2-ayatanaappindicator3-0.1",
)


def say(message: str) -> None:
    """One line of progress."""
    print(f"guardd install: {message}", flush=True)


def missing_packages(packages: tuple[str, ...] = RUNTIME_PACKAGES) -> list[str]:
    """The runtime packages dpkg does not list as installed."""
    missing = []
    for name in packages:
        done = subprocess.run(
            ["dpkg-query", "-W", "-f=${Status}", name], capture_output=True, text=True, check=False
        )
        if "install ok installed" not in done.stdout:
            missing.append(name)
    return missing


def install_packages() -> None:
    """apt-get install what guardd needs and is not there yet."""
    missing = missing_packages()
    if not missing:
        return
    say(f"installing Debian packages: {' '.join(missing)}")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
    subprocess.run(
        ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing],
        check=True,
        env=env,
    )


def make_venv(root: Path, python: str) -> Path:
    """A fresh venv under /opt/guardd with guardd installed from the checkout (not editable)."""
    prefix = root / PREFIX
    say(f"creating {prefix} (a venv with this checkout installed, not editable)")
    shutil.rmtree(prefix, ignore_errors=True)
    prefix.parent.mkdir(parents=True, exist_ok=True)
    # Debian's PyGObject (3.42) satisfies guardd's `PyGObject<3.51`: nothing is compiled.
    subprocess.run([python, "-m", "venv", "--system-site-packages", str(prefix)], check=True)
    pip = [str(prefix / "bin/python"), "-m", "pip", "-q", "--disable-pip-version-check"]
    subprocess.run([*pip, "install", "--no-cache-dir", str(CHECKOUT)], check=True)
    return prefix


def link_commands(root: Path) -> list[str]:
    """/usr/local/bin symlinks to the venv's commands (guard-tray only if it is there)."""
    linked = []
    bin_dir = root / BIN_DIR
    bin_dir.mkdir(parents=True, exist_ok=True)
    for name in COMMANDS:
        target = Path("/") / PREFIX / "bin" / name
        if not (root / PREFIX / "bin" / name).is_file():
            continue
        link = bin_dir / name
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(target)
        linked.append(name)
    return linked


def install_config(root: Path) -> None:
    """/etc/guardd/guardd.toml and rules.d/, only where nothing is there yet."""
    config = root / CONFIG_DIR
    rules = config / "rules.d"
    rules.mkdir(parents=True, exist_ok=True, mode=0o755)
    target = config / "guardd.toml"
    if target.exists():
        say(f"keeping the existing {target}")
    else:
        shutil.copy(PACKAGING / "guardd.toml", target)
    if any(rules.iterdir()):
        say(f"keeping the existing rules in {rules}")
    else:
        for source in sorted((PACKAGING / "rules.d").glob("*.toml")):
            shutil.copy(source, rules / source.name)
    state = root / STATE_DIR
    state.mkdir(parents=True, exist_ok=True, mode=0o750)
    state.chmod(0o750)


def install_unit(root: Path) -> None:
    """The systemd unit, and the tray's autostart file when the checkout has the tray."""
    unit = root / UNIT
    unit.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(PACKAGING / "guardd.service", unit)
    desktop = CHECKOUT / "tray/guard-tray.desktop"
    if desktop.is_file():
        (root / AUTOSTART).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(desktop, root / AUTOSTART)


def configure_clamd(root: Path) -> bool:
    """Ask Debian's clamd to report files past its limits (`AlertExceedsMax`): guardd counts
    them as not clean, which it can only do if clamd says so. Debian's clamd.conf has no
    include folder, so the line is added with a mark and removed again by uninstall."""
    conf = root / CLAMD_CONF
    if not conf.is_file():
        say(f"no {conf}: install clamav-daemon, then run make install again")
        return False
    text = conf.read_text()
    if any(line.split()[:1] == ["AlertExceedsMax"] for line in text.splitlines()):
        return False
    conf.write_text(text.rstrip("\n") + f"\n{CLAMD_MARK}\n{CLAMD_LINE}\n")
    return True


def unconfigure_clamd(root: Path) -> bool:
    """Take out the lines install added to clamd.conf (and only those)."""
    conf = root / CLAMD_CONF
    if not conf.is_file():
        return False
    lines = conf.read_text().splitlines()
    if CLAMD_MARK not in lines:
        return False
    at = lines.index(CLAMD_MARK)
    kept = lines[:at] + lines[at + 2 :] if lines[at + 1 : at + 2] == [CLAMD_LINE] else lines
    conf.write_text("\n".join(kept) + "\n")
    return True


def systemd_running() -> bool:
    """Whether systemd manages this machine now (not in a chroot or container build)."""
    return Path("/run/systemd/system").is_dir()


def systemctl(*args: str) -> None:
    """systemctl, tolerated to fail (a message, not a traceback)."""
    done = subprocess.run(["systemctl", *args], check=False)
    if done.returncode != 0:
        say(f"systemctl {' '.join(args)} exited {done.returncode}")


def install(root: Path, python: str) -> int:
    """Everything `make install` does."""
    if root == Path("/"):
        install_packages()
    make_venv(root, python)
    say(f"commands: {', '.join(link_commands(root))} in /{BIN_DIR}")
    install_config(root)
    install_unit(root)
    clamd_changed = configure_clamd(root)
    if root != Path("/"):
        return 0
    if not systemd_running():
        systemctl("enable", "guardd.service")
        say("systemd is not running here: guardd is enabled and starts at the next boot")
        return 0
    systemctl("daemon-reload")
    if clamd_changed:
        systemctl("try-restart", "clamav-daemon.service")
    systemctl("enable", "guardd.service")
    systemctl("restart", "guardd.service")
    say("guardd is running: systemctl status guardd, journalctl -u guardd")
    return 0


def open_usb(devices: Path = USB_DEVICES) -> list[str]:
    """Set every controller back to the kernel's boot default (new devices allowed)."""
    done = []
    for controller in sorted(devices.glob("usb[0-9]*")):
        switch = controller / "authorized_default"
        try:
            switch.write_text("1")
        except OSError as e:
            say(f"could not reset {switch}: {e.strerror}")
            continue
        done.append(controller.name)
    return done


def uninstall(root: Path, keep_usb_closed: bool) -> int:
    """Everything `make uninstall` does."""
    live = root == Path("/") and systemd_running()
    if live:
        systemctl("disable", "--now", "guardd.service")
    for path in (root / UNIT, root / AUTOSTART):
        path.unlink(missing_ok=True)
    for name in COMMANDS:
        link = root / BIN_DIR / name
        if link.is_symlink() and str(os.readlink(link)).startswith(f"/{PREFIX}/"):
            link.unlink()
    shutil.rmtree(root / PREFIX, ignore_errors=True)
    clamd_changed = unconfigure_clamd(root)
    if live:
        systemctl("daemon-reload")
        if clamd_changed:
            systemctl("try-restart", "clamav-daemon.service")
    if root == Path("/") and not keep_usb_closed:
        opened = open_usb()
        names = ", ".join(opened) or "none found"
        say(f"USB controllers back to the kernel's default (new devices allowed): {names}")
        say("devices guardd switched off stay off until they are unplugged")
    elif root == Path("/"):
        say("USB controllers left closed: new devices stay off until the next boot")
    say(f"kept /{CONFIG_DIR} and /{STATE_DIR} (config and audit trail); remove them by hand")
    return 0


def main(argv: list[str] | None = None) -> int:
    """`python3 packaging/install.py install|uninstall [--root DIR]`."""
    parser = argparse.ArgumentParser(prog="install.py")
    parser.add_argument("action", choices=("install", "uninstall"))
    parser.add_argument("--root", type=Path, default=Path("/"), help="install into DIR")
    parser.add_argument("--python", default="/usr/bin/python3", help="interpreter for the venv")
    parser.add_argument(
        "--keep-usb-closed",
        action="store_true",
        help="uninstall: leave authorized_default=0 (new devices off until the next boot)",
    )
    args = parser.parse_args(argv)
    root = args.root.resolve()
    if root == Path("/") and os.geteuid() != 0:
        print("guardd install: run as root (sudo make install)", file=sys.stderr)
        return 2
    try:
        if args.action == "install":
            return install(root, args.python)
        return uninstall(root, args.keep_usb_closed)
    except subprocess.CalledProcessError as e:
        command = " ".join(map(str, e.cmd))
        print(f"guardd install: `{command}` failed (exit {e.returncode})", file=sys.stderr)
        return 1
    except OSError as e:
        where = f": {e.filename}" if e.filename else ""
        print(f"guardd install: failed: {e.strerror or e}{where}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
