"""Block devices: switch a device read-only at the block layer (BLKROSET) and read it back.

`devnode` comes from udev's DEVNAME, which a device cannot choose, but the path is still
checked before it is opened as root: it must be a normalised absolute path under /dev/, its
last component must not be a symbolic link, and what opens must be a block device.
"""

from __future__ import annotations

import errno
import fcntl
import os
import stat
import struct

# From <linux/fs.h>: _IO(0x12, 93) and _IO(0x12, 94); both take a pointer to an int.
BLKROSET = 0x125D
BLKROGET = 0x125E
_INT = struct.Struct("i")


class MediaError(Exception):
    """A media operation failed or was refused; the message is a plain reason, `errno` the
    system's error number when there was one (EBUSY: a file is open for writing)."""

    def __init__(self, message: str, errno: int = 0) -> None:
        super().__init__(message)
        self.errno = errno


def _check_path(devnode: str) -> None:
    """Refuse anything that is not a plain absolute path under /dev/ ('..' and '//' too)."""
    if "\0" in devnode or os.path.normpath(devnode) != devnode:
        raise MediaError(f"{devnode!r} is not a normalised device path")
    if not devnode.startswith("/dev/"):
        raise MediaError(f"{devnode!r} is not under /dev/")


def _open_block(devnode: str) -> int:
    """Open a block device without side effects: read-only, non-blocking, never via a link."""
    _check_path(devnode)
    # O_NONBLOCK: a drive with no medium still opens; O_NOFOLLOW: a link planted in /dev
    # (or a udev rule gone wrong) cannot redirect root to another file.
    flags = os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK | os.O_NOFOLLOW
    # The node is opened relative to a directory fd of /dev itself: the name is resolved by
    # the kernel under the real /dev, whatever a preload (umockdev's, in the tests) or an
    # LD_PRELOAD-style shim would make of an absolute "/dev/..." path.
    try:
        dev = os.open("/dev", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as exc:
        raise MediaError(f"cannot open /dev: {exc.strerror}") from exc
    try:
        fd = os.open(devnode[len("/dev/") :], flags, dir_fd=dev)
    except OSError as exc:
        reason = "is a symbolic link" if exc.errno == errno.ELOOP else exc.strerror
        raise MediaError(f"cannot open {devnode}: {reason}") from exc
    finally:
        os.close(dev)
    if not stat.S_ISBLK(os.fstat(fd).st_mode):
        os.close(fd)
        raise MediaError(f"{devnode} is not a block device")
    return fd


def set_read_only(devnode: str, read_only: bool) -> None:
    """Set (or clear) the block layer's read-only flag of `devnode` (needs CAP_SYS_ADMIN).

    Set it on the whole disk and on each partition: since Linux 5.12 each node keeps its own
    flag, and the whole disk's does not cover its partitions.
    It stops writes through the device node; it does not stop a filesystem already mounted
    read-write from writing (the kernel only warns), which is what `mounts.hold` is for.
    """
    fd = _open_block(devnode)
    try:
        fcntl.ioctl(fd, BLKROSET, _INT.pack(1 if read_only else 0))
    except OSError as exc:
        raise MediaError(f"cannot set {devnode} read-only={read_only}: {exc.strerror}") from exc
    finally:
        os.close(fd)


def is_read_only(devnode: str) -> bool:
    """Whether the block layer treats `devnode` as read-only (its own flag or its disk's)."""
    fd = _open_block(devnode)
    try:
        raw = fcntl.ioctl(fd, BLKROGET, _INT.pack(0))
    except OSError as exc:
        raise MediaError(f"cannot read the read-only flag of {devnode}: {exc.strerror}") from exc
    finally:
        os.close(fd)
    return bool(_INT.unpack(raw)[0])


def device_number(devnode: str) -> tuple[int, int]:
    """The (major, minor) of the block device `devnode`, as mountinfo shows them."""
    fd = _open_block(devnode)
    try:
        rdev = os.fstat(fd).st_rdev
    finally:
        os.close(fd)
    return os.major(rdev), os.minor(rdev)
