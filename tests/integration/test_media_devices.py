"""Media hold on a real kernel: loop devices, ext4, exFAT through exfat-fuse, vfat via fusefat.

Runs as root. Every loop device and mount is undone by the `undo` fixture, test failed or not.
"""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from guardd.media import (
    MediaError,
    Mount,
    device_number,
    hold,
    is_read_only,
    mounts_of,
    read_mounts,
    release,
    set_read_only,
)

if os.geteuid() != 0 or not os.path.exists("/dev/loop-control"):
    pytest.skip("needs root and loop devices", allow_module_level=True)

# The kernel escapes these in mountinfo: the parser meets them for real.
VOLUME = "vol 1\\x"
# umockdev's preload must not sit between losetup/mount and the real /dev.
ENV = {k: v for k, v in os.environ.items() if k not in ("LD_PRELOAD", "UMOCKDEV_DIR")}


def run(*argv: str) -> str:
    """Run a tool; its output on failure is in the exception (and the test's report)."""
    done = subprocess.run(argv, env=ENV, capture_output=True, text=True, timeout=60, check=False)
    if done.returncode != 0:
        raise AssertionError(f"{argv} failed ({done.returncode}): {done.stderr}{done.stdout}")
    return done.stdout


def need(*tools: str) -> None:
    """Skip the test, saying which tool is missing, unless every one is on PATH."""
    missing = [tool for tool in tools if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"{', '.join(missing)} not installed (Debian: dosfstools, exfatprogs)")


@pytest.fixture
def undo() -> Iterator[ExitStack]:
    """Cleanups, run last-registered first when the test ends however it ends."""
    with ExitStack() as stack:
        yield stack


def image(tmp_path: Path, mkfs: tuple[str, ...] = ()) -> Path:
    """A 32 MiB image file, formatted by `mkfs` (the image path is appended) if given."""
    path = tmp_path / "disk.img"
    with path.open("wb") as file:
        file.truncate(32 * 1024 * 1024)
    if mkfs:
        run(*mkfs, str(path))
    return path


def attach(undo: ExitStack, path: Path) -> str:
    """A loop device on `path`, detached at the end."""
    devnode = run("losetup", "--find", "--show", str(path)).strip()
    undo.callback(_detach, devnode)
    # The block layer's read-only flag outlives `losetup -d`: whoever had this loop number
    # before (another test run on this machine) may have left it set.
    set_read_only(devnode, False)
    return devnode


def _detach(devnode: str) -> None:
    # Clear the flag first, for the next user of this loop number.
    try:
        set_read_only(devnode, False)
    finally:
        run("losetup", "--detach", devnode)


def mount(undo: ExitStack, tmp_path: Path, *argv: str) -> Path:
    """Run a mount command with a fresh mount point appended; unmounted at the end."""
    mountpoint = tmp_path / VOLUME
    mountpoint.mkdir()
    run(*argv, str(mountpoint))
    undo.callback(_unmount, mountpoint)
    return mountpoint


def _unmount(mountpoint: Path) -> None:
    if os.path.ismount(mountpoint):
        done = subprocess.run(["umount", str(mountpoint)], env=ENV, check=False)
        if done.returncode != 0:
            run("umount", "--lazy", str(mountpoint))


def find(mountpoint: Path) -> Mount:
    """The one mount at `mountpoint`, as mountinfo shows it now."""
    found = [m for m in read_mounts() if m.mountpoint == str(mountpoint)]
    assert len(found) == 1, found
    return found[0]


def write_error(path: Path, flags: int = os.O_CREAT) -> int | None:
    """The errno of opening `path` for writing and writing 4 KiB to it; None if it worked."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC | flags, 0o644)
        try:
            os.write(fd, b"\0" * 4096)
        finally:
            os.close(fd)
    except OSError as exc:
        return exc.errno
    return None


def assert_write_refused(mountpoint: Path) -> None:
    assert write_error(mountpoint / "after-hold") == errno.EROFS


def assert_held_then_released(mountpoint: Path) -> None:
    """hold() stops writes and adds the four restrictions; release() undoes exactly that."""
    before = find(mountpoint)
    hold(before)
    held = find(mountpoint)
    assert {"ro", "nosuid", "nodev", "noexec"} <= held.options
    assert held.options & {"relatime", "noatime"} == before.options & {"relatime", "noatime"}
    assert_write_refused(mountpoint)
    release(before)
    assert find(mountpoint).options == before.options
    (mountpoint / "after-release").write_bytes(b"x")


def test_block_read_only_round_trip(tmp_path: Path, undo: ExitStack) -> None:
    devnode = attach(undo, image(tmp_path))
    assert not is_read_only(devnode)
    set_read_only(devnode, True)
    assert is_read_only(devnode)
    assert write_error(Path(devnode), 0) in (errno.EPERM, errno.EROFS)
    set_read_only(devnode, False)
    assert not is_read_only(devnode)
    assert write_error(Path(devnode), 0) is None


def test_device_number_is_the_nodes(tmp_path: Path, undo: ExitStack) -> None:
    devnode = attach(undo, image(tmp_path))
    rdev = os.stat(devnode).st_rdev
    assert device_number(devnode) == (os.major(rdev), os.minor(rdev))
    assert os.major(rdev) == 7  # loop


def test_ext4_found_by_device_number_held_and_released(tmp_path: Path, undo: ExitStack) -> None:
    devnode = attach(undo, image(tmp_path, ("mkfs.ext4", "-q", "-F")))
    mountpoint = mount(undo, tmp_path, "mount", "-t", "ext4", "-o", "rw,relatime", devnode)
    script = mountpoint / "run.sh"
    script.write_text("#!/bin/sh\nexit 0\n")
    script.chmod(0o755)
    subprocess.run([str(script)], env=ENV, check=True)

    found = mounts_of("/dev/not-this-one", *device_number(devnode), read_mounts())
    assert [m.mountpoint for m in found] == [str(mountpoint)]
    assert found[0].fstype == "ext4"

    hold(found[0])
    assert "noexec" in find(mountpoint).options
    with pytest.raises(PermissionError):
        subprocess.run([str(script)], env=ENV, check=False)
    assert_write_refused(mountpoint)
    release(found[0])
    assert find(mountpoint).options == found[0].options
    subprocess.run([str(script)], env=ENV, check=True)


def test_hold_twice_and_release_after_the_mount_is_gone(tmp_path: Path, undo: ExitStack) -> None:
    devnode = attach(undo, image(tmp_path, ("mkfs.ext4", "-q", "-F")))
    mountpoint = mount(undo, tmp_path, "mount", devnode)
    before = find(mountpoint)
    hold(before)
    hold(before)  # idempotent: the daemon may re-apply a hold after a restart
    assert_write_refused(mountpoint)
    run("umount", str(mountpoint))
    with pytest.raises(MediaError, match="no longer shows mount"):
        release(before)


def test_exfat_fuse_on_a_loop_device(tmp_path: Path, undo: ExitStack) -> None:
    need("mkfs.exfat", "mount.exfat-fuse")
    devnode = attach(undo, image(tmp_path, ("mkfs.exfat",)))
    mountpoint = mount(undo, tmp_path, "mount.exfat-fuse", devnode)
    found = find(mountpoint)
    assert found.source == devnode
    # Never by source alone (a device number no mount has): the source can be forged.
    assert mounts_of(devnode, 4095, 1048575, read_mounts()) == []
    # Run as root, exfat-fuse mounts "fuseblk": the kernel opens the device, so mountinfo
    # has its real number. Only an unprivileged FUSE mount shows an anonymous 0:N.
    assert found.fstype == "fuseblk"
    assert mounts_of("/dev/not-this-one", *device_number(devnode), read_mounts()) == [found]
    assert_held_then_released(mountpoint)


def test_vfat_image_through_fusefat(tmp_path: Path, undo: ExitStack) -> None:
    need("mkfs.vfat", "fusefat")
    path = image(tmp_path, ("mkfs.vfat",))
    mountpoint = mount(undo, tmp_path, "fusefat", "-o", "rw+", str(path))
    found = find(mountpoint)
    assert found.fstype == "fuse.fusefat"
    # No block device: an anonymous 0:N, and the source is fusefat's name, not the image.
    assert found.major == 0
    assert found.source == "fusefat"
    assert mounts_of(str(path), 4095, 1048575, read_mounts()) == []
    assert_held_then_released(mountpoint)


def test_plain_fuse_mount_naming_a_device_is_not_taken_for_it(
    tmp_path: Path, undo: ExitStack
) -> None:
    need("mkfs.vfat", "fusefat")
    devnode = attach(undo, image(tmp_path, ("mkfs.ext4", "-q", "-F")))
    path = image(tmp_path, ("mkfs.vfat",))
    # A FUSE mount whose fsname claims to be the real drive's node: a forgery any FUSE user
    # can make. It must never be mistaken for the drive (guardd would scan the wrong tree).
    mountpoint = mount(undo, tmp_path, "fusefat", "-o", f"rw+,fsname={devnode}", str(path))
    found = find(mountpoint)
    assert (found.major, found.source) == (0, devnode)
    assert mounts_of(devnode, *device_number(devnode), read_mounts()) == []
