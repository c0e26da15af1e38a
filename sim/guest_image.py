"""The Debian guest for the QEMU tier: built once, cached under the checkout's build/ folder.

Two stages:
- the base root filesystem (debootstrap minbase of bookworm, with the kernel, udev, clamd,
  usbguard, cryptsetup and gpg), cached for as long as its recipe does not change;
- the image: a copy of the base with guardd installed INSIDE by `make install` (run in a
  chroot from a copy of the checkout), the guest agent, and the test's clamd database, made
  into an ext4 disk image. It is cached under a key of the recipe and the checkout's files,
  so one test run (and the bench after it) builds it once.

The guest has no network: everything it needs is put in at build time.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from sim.clamd import EICAR, EICAR_SIGNATURE
from sim.env import real_env

RECIPE = 4  # bump when the base packages or the guest's setup change
SUITE = "bookworm"
BASE_PACKAGES = (
    "systemd-sysv",
    "udev",
    "dbus",
    "python3",
    "python3-venv",
    "kmod",
    "linux-image-amd64",
    "initramfs-tools",
    "e2fsprogs",
    "util-linux",
    "procps",
    "cryptsetup",
    "cryptsetup-bin",
    "clamav-daemon",
    "clamdscan",
    "usbguard",
    "gpg",
    "gpg-agent",
    "make",
    "ca-certificates",
)
# make install's own Debian packages (packaging/install.py), there before it runs in the
# chroot: the tray's GI bindings and typelibs (Debian's PyGObject: nothing is compiled).
# Installed with apt in a second step (debootstrap's --include cannot order dconf).
EXTRA_PACKAGES = (
    "python3-gi",
    "python3-gi-cairo",
    "gir1.2-gtk-3.0",
    "gir1.2-ayatanaappindicator3-0.1",
)
# Services a guest without network or a real user does not want at boot.
MASKED = (
    "clamav-freshclam.service",
    "usbguard-dbus.service",
    "apt-daily.timer",
    "apt-daily-upgrade.timer",
    "e2scrub_all.timer",
    "e2scrub_reap.service",
    "fstrim.timer",
    "systemd-timesyncd.service",
)
IMAGE_SIZE = "3G"
AGENT_PORT = "org.guardd.agent"
CLAMD_DB = "guardd-e2e.hdb"
SOURCE_PARTS = ("guardd", "rules", "signing", "tray", "packaging")
SOURCE_FILES = ("Makefile", "pyproject.toml", "README.md")


@dataclass(frozen=True)
class GuestImage:
    """A bootable guest: kernel, initrd and root filesystem image (booted with snapshot=on)."""

    kernel: Path
    initrd: Path
    rootfs: Path


def apt_mirror(sources: tuple[Path, ...] = ()) -> str:
    """The Debian mirror apt already uses on this host (the guest is built from the same)."""
    paths = sources or (
        Path("/etc/apt/sources.list.d/debian.sources"),
        Path("/etc/apt/sources.list"),
        *sorted(Path("/etc/apt/sources.list.d").glob("*.sources")),
        *sorted(Path("/etc/apt/sources.list.d").glob("*.list")),
    )
    for path in paths:
        try:
            text = path.read_text()
        except OSError:
            continue
        found = re.search(r"^URIs:\s*(\S+/debian)/?\s*$", text, re.MULTILINE) or re.search(
            r"^deb\s+(?:\[[^]]*\]\s+)?(\S+/debian)/?\s+bookworm\b", text, re.MULTILINE
        )
        if found:
            return found.group(1)
    return "http://deb.debian.org/debian"


def _log(message: str) -> None:
    print(f"guest image: {message}", file=sys.stderr, flush=True)


def _run(*argv: str, cwd: Path | None = None, timeout: float = 1800) -> None:
    subprocess.run(
        argv,
        check=True,
        cwd=cwd,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
        stdout=sys.stderr,  # progress, never mixed into a caller's output (make bench's JSON)
        env=real_env(),
    )


def _recipe_hash() -> str:
    packages = ",".join(BASE_PACKAGES + EXTRA_PACKAGES)
    text = f"{RECIPE}|{SUITE}|{packages}|{apt_mirror()}"
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def build_base(build: Path) -> Path:
    """The cached base root filesystem (debootstrap), made if missing or stale."""
    base = build / "base"
    stamp = build / "base.stamp"
    key = _recipe_hash()
    if base.is_dir() and stamp.is_file() and stamp.read_text().strip() == key:
        return base
    tmp = build / "base.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.rmtree(base, ignore_errors=True)
    build.mkdir(parents=True, exist_ok=True)
    _log(f"debootstrap {SUITE} from {apt_mirror()} (a few minutes, once)")
    started = time.monotonic()
    _run(
        "debootstrap",
        "--variant=minbase",
        f"--include={','.join(BASE_PACKAGES)}",
        SUITE,
        str(tmp),
        apt_mirror(),
    )
    shutil.copy("/etc/resolv.conf", tmp / "etc/resolv.conf")
    _chroot(tmp, "apt-get", "update", "-qq")
    _chroot(tmp, "apt-get", "install", "-y", "-qq", "--no-install-recommends", *EXTRA_PACKAGES)
    _chroot(tmp, "apt-get", "clean")
    tmp.rename(base)
    stamp.write_text(key + "\n")
    _log(f"base ready in {time.monotonic() - started:.0f} s")
    return base


def _chroot(root: Path, *argv: str, env: dict[str, str] | None = None) -> None:
    """Run a command in the tree with /proc, /sys and /dev, in a mount namespace of its own
    (the mounts vanish with it, whatever happens)."""
    script = (
        'set -e; R="$1"; shift; mount -t proc proc "$R/proc"; mount -t sysfs sys "$R/sys"; '
        'mount --rbind /dev "$R/dev"; exec chroot "$R" "$@"'
    )
    full_env = {
        **(env or {}),
        "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "HOME": "/root",
        "LANG": "C.UTF-8",
        "DEBIAN_FRONTEND": "noninteractive",
    }
    subprocess.run(
        ["unshare", "-m", "--propagation", "private", "sh", "-c", script, "sh", str(root), *argv],
        check=True,
        env=full_env,
        stdin=subprocess.DEVNULL,
        stdout=sys.stderr,
        timeout=1800,
    )


def checkout_files(checkout: Path) -> list[Path]:
    """The checkout's files that make up guardd and its install (relative paths, sorted)."""
    files = [Path(name) for name in SOURCE_FILES if (checkout / name).is_file()]
    for part in SOURCE_PARTS:
        for path in sorted((checkout / part).rglob("*")):
            rel = path.relative_to(checkout)
            if path.is_file() and "__pycache__" not in rel.parts and "results" not in rel.parts:
                files.append(rel)
    return sorted(files)


def image_key(checkout: Path) -> str:
    """A key of the recipe and the content of every file copied into the guest."""
    digest = hashlib.sha256(_recipe_hash().encode())
    for rel in checkout_files(checkout):
        digest.update(str(rel).encode() + b"\0")
        digest.update((checkout / rel).read_bytes())
    agent = Path(__file__).with_name("guest_agent.py")
    digest.update(agent.read_bytes())
    digest.update(Path(__file__).read_bytes())
    return digest.hexdigest()[:16]


def build_image(checkout: Path, build: Path) -> GuestImage:
    """The guest image for this checkout, built if it is not in the cache yet."""
    key = image_key(checkout)
    out = build / f"image-{key}"
    image = GuestImage(out / "vmlinuz", out / "initrd.img", out / "rootfs.img")
    if image.rootfs.is_file():
        return image
    base = build_base(build)
    for old in build.glob("image-*"):
        shutil.rmtree(old, ignore_errors=True)  # one image at a time: they are 1 GB each
    started = time.monotonic()
    work = build / "work"
    shutil.rmtree(work, ignore_errors=True)
    _log("copying the base")
    _run("cp", "-a", str(base), str(work))
    _install_guardd(checkout, work)
    _setup_guest(work)
    tmp = build / "image.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    shutil.copy(_newest(work / "boot", "vmlinuz-*"), tmp / "vmlinuz")
    shutil.copy(_newest(work / "boot", "initrd.img-*"), tmp / "initrd.img")
    _log("making the ext4 image")
    _run(
        "mke2fs",
        "-q",
        "-t",
        "ext4",
        "-L",
        "guest",
        "-d",
        str(work),
        str(tmp / "rootfs.img"),
        IMAGE_SIZE,
    )
    shutil.rmtree(work, ignore_errors=True)
    tmp.rename(out)
    _log(f"image {key} ready in {time.monotonic() - started:.0f} s")
    return image


def _newest(folder: Path, pattern: str) -> Path:
    found = sorted(folder.glob(pattern))
    if not found:
        raise FileNotFoundError(f"no {pattern} in {folder}")
    return found[-1]


def _install_guardd(checkout: Path, root: Path) -> None:
    """Copy the checkout into the tree and run `make install` there, in a chroot."""
    src = root / "root/guardd-src"
    shutil.rmtree(src, ignore_errors=True)
    for rel in checkout_files(checkout):
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(checkout / rel, src / rel)
    shutil.copy("/etc/resolv.conf", root / "etc/resolv.conf")  # pip reaches PyPI at build time
    # pip in the chroot trusts what pip on the host trusts (a proxy's CA, if the host has one).
    cert = os.environ.get("PIP_CERT") or os.environ.get("REQUESTS_CA_BUNDLE") or ""
    env = {}
    if cert and Path(cert).is_file():
        shutil.copy(cert, root / "tmp/host-ca.crt")
        env["PIP_CERT"] = "/tmp/host-ca.crt"
    _log("make install in the guest (chroot)")
    try:
        _chroot(root, "make", "-C", "/root/guardd-src", "install", env=env)
    finally:
        (root / "tmp/host-ca.crt").unlink(missing_ok=True)


def _setup_guest(root: Path) -> None:
    """Guest-only setup: agent, clamd database, services, console, fstab."""
    (root / "etc/hostname").write_text("guardd-guest\n")
    (root / "etc/fstab").write_text("/dev/vda / ext4 rw,relatime 0 1\n")
    (root / "etc/machine-id").write_text("0123456789abcdef0123456789abcdef\n")
    agent_dir = root / "usr/local/lib/guardd-e2e"
    agent_dir.mkdir(parents=True, exist_ok=True)
    shutil.copy(Path(__file__).with_name("guest_agent.py"), agent_dir / "agent.py")
    units = root / "etc/systemd/system"
    (units / "guardd-agent.service").write_text(
        "[Unit]\nDescription=guardd e2e guest agent (tests only)\n"
        "DefaultDependencies=no\nAfter=systemd-udevd.service\n\n"
        "[Service]\nExecStart=/usr/bin/python3 /usr/local/lib/guardd-e2e/agent.py\n"
        "Restart=always\nRestartSec=1\n\n[Install]\nWantedBy=multi-user.target\n"
    )
    wants = units / "multi-user.target.wants"
    wants.mkdir(parents=True, exist_ok=True)
    _symlink("/etc/systemd/system/guardd-agent.service", wants / "guardd-agent.service")
    for unit in MASKED:
        _symlink("/dev/null", units / unit)
    # USBGuard is there for the side-by-side comparison: started only when a test asks.
    (units / "basic.target.wants/usbguard.service").unlink(missing_ok=True)
    # The guest has no freshclam database: clamd runs on the tests' own (the EICAR hash).
    md5 = hashlib.md5(EICAR, usedforsecurity=False).hexdigest()
    (root / "var/lib/clamav" / CLAMD_DB).write_text(f"{md5}:{len(EICAR)}:{EICAR_SIGNATURE}\n")
    dropin = units / "clamav-daemon.service.d"
    dropin.mkdir(parents=True, exist_ok=True)
    (dropin / "e2e.conf").write_text("[Unit]\nConditionPathExistsGlob=\n")
    getty = units / "serial-getty@ttyS0.service.d"
    getty.mkdir(parents=True, exist_ok=True)
    (getty / "autologin.conf").write_text(
        "[Service]\nExecStart=\n"
        "ExecStart=-/sbin/agetty --autologin root --noclear %I 115200 linux\n"
    )
    # usbguard's policy for the side-by-side comparison is written by the bench itself.
    (root / "etc/usbguard/rules.conf").write_text("")


def _symlink(target: str, link: Path) -> None:
    if link.is_symlink() or link.exists():
        link.unlink()
    os.symlink(target, link)


def main() -> int:
    """`python -m sim.guest_image`: build (or find) the guest image and print its paths."""
    checkout = Path(__file__).resolve().parent.parent
    image = build_image(checkout, checkout / "build/e2e")
    print(image.kernel, image.initrd, image.rootfs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
