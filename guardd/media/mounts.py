"""Mounts: parse /proc/self/mountinfo, find a device's mounts, hold them read-only, release.

A hold is a bind remount (MS_REMOUNT|MS_BIND): it changes only the per-mount flags (ro,
nosuid, nodev, noexec, atime), never the filesystem's own options, so it works the same for
any filesystem, FUSE included, and needs nothing from the filesystem's driver.

Paths in mountinfo can be chosen by a user (a mount point under /media named after a
volume label, a FUSE fsname): they are parsed from escaped text, never trusted as paths
when remounting (see `_open_mount_root`).
"""

from __future__ import annotations

import ctypes
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass

from guardd.media.blockdev import MediaError

# <linux/mount.h>: the flags a bind remount reads as per-mount flags.
MS_RDONLY = 0x1
MS_NOSUID = 0x2
MS_NODEV = 0x4
MS_NOEXEC = 0x8
MS_REMOUNT = 0x20
MS_NOSYMFOLLOW = 0x100
MS_NOATIME = 0x400
MS_NODIRATIME = 0x800
MS_BIND = 0x1000
MS_RELATIME = 0x200000
MS_STRICTATIME = 0x1000000

# Per-mount options mountinfo shows (field 6) that stand for one flag each; the atime
# options are handled apart, as the kernel reads them as one mode.
_PLAIN_FLAGS = {
    "ro": MS_RDONLY,
    "nosuid": MS_NOSUID,
    "nodev": MS_NODEV,
    "noexec": MS_NOEXEC,
    "nosymfollow": MS_NOSYMFOLLOW,
}
HOLD_FLAGS = MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC

_ESCAPE = re.compile(rb"\\([0-3][0-7]{2})")
_NUMBER = re.compile(rb"[0-9]{1,10}")
_DEVICE = re.compile(rb"([0-9]{1,10}):([0-9]{1,10})")
MAX_MOUNTINFO_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True)
class Mount:
    """One line of mountinfo: the mount's id, device, paths and options (fields per proc(5))."""

    mount_id: int
    major: int
    minor: int
    root: str
    mountpoint: str
    options: frozenset[str]
    fstype: str
    source: str
    super_options: frozenset[str]


def unescape(field: bytes) -> str:
    """Undo the kernel's octal escapes (\\040 space, \\011 tab, \\012 newline, \\134 '\\')."""
    raw = _ESCAPE.sub(lambda m: bytes([int(m.group(1), 8)]), field)
    # Paths are bytes to the kernel; surrogateescape keeps undecodable ones round-trippable.
    return os.fsdecode(raw)


def _options(field: bytes) -> frozenset[str]:
    return frozenset(unescape(opt) for opt in field.split(b",") if opt)


def parse_line(line: bytes) -> Mount | None:
    """One mountinfo line as a Mount; None if it is malformed in any way (never raises).

    Fields: id parent major:minor root mountpoint options [optional...] - fstype source
    super-options. Optional fields ("shared:12 master:3") end at the lone "-".
    """
    fields = line.split(b" ")
    try:
        dash = fields.index(b"-", 6)
    except ValueError:
        return None
    tail = fields[dash + 1 :]
    device = _DEVICE.fullmatch(fields[2])
    # Every field but the source is non-empty (a mount made with source "" shows nothing).
    if len(tail) != 3 or device is None or not all([*fields[:dash], tail[0], tail[2]]):
        return None
    if not (_NUMBER.fullmatch(fields[0]) and _NUMBER.fullmatch(fields[1])):
        return None
    return Mount(
        mount_id=int(fields[0]),
        major=int(device.group(1)),
        minor=int(device.group(2)),
        root=unescape(fields[3]),
        mountpoint=unescape(fields[4]),
        options=_options(fields[5]),
        fstype=unescape(tail[0]),
        source=unescape(tail[1]),
        super_options=_options(tail[2]),
    )


def parse_mountinfo(data: bytes) -> list[Mount]:
    """Every well-formed line of a mountinfo text; malformed lines are skipped."""
    mounts = (parse_line(line) for line in data.split(b"\n") if line)
    return [mount for mount in mounts if mount is not None]


def read_mounts(path: str = "/proc/self/mountinfo") -> list[Mount]:
    """The mounts of this process's mount namespace (or of a mountinfo file, for tests)."""
    try:
        with open(path, "rb") as file:
            data = file.read(MAX_MOUNTINFO_BYTES)
    except OSError as exc:
        raise MediaError(f"cannot read {path}: {exc.strerror}") from exc
    return parse_mountinfo(data)


def mounts_of(devnode: str, major: int, minor: int, mounts: Iterable[Mount]) -> list[Mount]:
    """The mounts of a block device, by the kernel's major:minor only.

    Never by source: on a plain "fuse.*" mount the source is the mounter's `fsname`, which
    any user allowed to mount FUSE can set to "/dev/sdb1"; matching it would let a staff
    member have guardd scan a harmless tree of their own and release the real drive unscanned.
    FUSE filesystems that read a block device as root ("fuseblk": exfat-fuse, ntfs-3g) carry
    its real number. `devnode` is kept for messages.
    """
    del devnode
    return [m for m in mounts if (m.major, m.minor) == (major, minor)]


def _atime_flags(options: frozenset[str]) -> int:
    """The atime flags to pass so a remount keeps (or restores) `options`' atime mode."""
    flags = MS_NODIRATIME if "nodiratime" in options else 0
    if "noatime" in options:
        return flags | MS_NOATIME
    if "relatime" in options:
        return flags | MS_RELATIME
    # Neither shown means strictatime; say so, or the kernel would keep whatever is current.
    return flags | MS_STRICTATIME


def release_flags(options: frozenset[str]) -> int:
    """mount(2) flags that set a mount's per-mount flags back to exactly `options`."""
    flags = MS_REMOUNT | MS_BIND | _atime_flags(options)
    for name, flag in _PLAIN_FLAGS.items():
        if name in options:
            flags |= flag
    return flags


def hold_flags(options: frozenset[str]) -> int:
    """mount(2) flags for a hold: `options` plus ro, nosuid, nodev and noexec."""
    return release_flags(options) | HOLD_FLAGS


def _mount_id_of(fd: int) -> int | None:
    """The id of the mount an open fd is on, from /proc/self/fdinfo (None if unreadable)."""
    try:
        with open(f"/proc/self/fdinfo/{fd}", "rb") as file:
            info = file.read(4096)
    except OSError:
        return None
    found = re.search(rb"^mnt_id:\s*([0-9]{1,10})$", info, re.MULTILINE)
    return int(found.group(1)) if found else None


def _open_mount_root(mount: Mount) -> int:
    """An O_PATH fd on the mount point, checked to be on `mount` itself.

    The mount point's path may be user-influenced (a label, a folder in a home), may have
    been covered by another mount, or the mount may be gone: remounting by path could then
    change the wrong mount. The fd pins what the path named at open time, and mount(2)
    through /proc/self/fd/N acts on exactly that mount (it is not resolved again).
    """
    flags = os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
    if "\0" in mount.mountpoint:
        raise MediaError(f"mount point {mount.mountpoint!r} has a NUL byte")
    try:
        fd = os.open(mount.mountpoint, flags)
    except OSError as exc:
        raise MediaError(f"cannot open mount point {mount.mountpoint!r}: {exc.strerror}") from exc
    if _mount_id_of(fd) != mount.mount_id:
        os.close(fd)
        raise MediaError(
            f"{mount.mountpoint!r} no longer shows mount {mount.mount_id} (unmounted or covered)"
        )
    return fd


_libc = ctypes.CDLL(None, use_errno=True)
_mount = _libc.mount
_mount.argtypes = [
    ctypes.c_char_p,
    ctypes.c_char_p,
    ctypes.c_char_p,
    ctypes.c_ulong,
    ctypes.c_void_p,
]
_mount.restype = ctypes.c_int


def _remount(mount: Mount, flags: int, what: str) -> None:
    """Bind-remount `mount` with `flags` (a per-mount change only), through a pinned fd."""
    fd = _open_mount_root(mount)
    try:
        target = f"/proc/self/fd/{fd}".encode()
        if _mount(None, target, None, flags, None) != 0:
            err = ctypes.get_errno()
            raise MediaError(f"cannot {what} {mount.mountpoint!r}: {os.strerror(err)}", err)
    finally:
        os.close(fd)


def hold(mount: Mount) -> None:
    """Make `mount` read-only, nosuid, nodev and noexec; its atime mode is kept."""
    _remount(mount, hold_flags(mount.options), "hold")


def make_writable(mount: Mount) -> None:
    """Make a filesystem's superblock writable again (MS_REMOUNT without MS_BIND).

    For a filesystem the kernel mounted read-only only because guardd held its device
    read-only (BLKROSET) when the desktop mounted it: the per-mount flags alone cannot undo
    that. Such a remount also resets the mount's own flags, so `mount.options` (the original
    ones: nosuid, nodev, noexec, atime) are passed along, minus ro. FUSE filesystems that
    opened the device read-only stay so (they must be mounted again).
    """
    flags = (release_flags(mount.options) & ~MS_BIND & ~MS_RDONLY) | MS_REMOUNT
    _remount(mount, flags, "make writable")


def open_root(mount: Mount) -> int:
    """A readable directory fd on the root of `mount`, for scanning relative to it.

    Checked like the remounts: no symlink at the mount point, the fd is on that very mount,
    and the whole filesystem is mounted there (a bind of a sub-folder would let guardd scan a
    part and release the whole).
    """
    if mount.root != "/":
        raise MediaError(f"only part of the filesystem is mounted at {mount.mountpoint!r}")
    flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        fd = os.open(mount.mountpoint, flags)
    except OSError as exc:
        raise MediaError(
            f"cannot open {mount.mountpoint!r}: {exc.strerror}", exc.errno or 0
        ) from exc
    if _mount_id_of(fd) != mount.mount_id:
        os.close(fd)
        raise MediaError(f"{mount.mountpoint!r} no longer shows mount {mount.mount_id}")
    return fd


def release(mount: Mount) -> None:
    """Give `mount` back exactly the per-mount flags recorded in `mount.options`.

    `mount` is the Mount as it was read before the hold (the held one has ro in it).
    """
    _remount(mount, release_flags(mount.options), "release")
