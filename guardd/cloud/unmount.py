"""Detaching a sync client's FUSE mount (rclone, pCloud) from a home, never by path.

The mount point is reached component by component from the watch root with O_NOFOLLOW
(guardd.cloud.beneath), its last component opened O_PATH (no permission on a user's FUSE
mount is needed for that), and the descriptor's mount id (/proc/self/fdinfo) must be the one
the mount table showed. Only then is that very mount detached, through /proc/self/fd/N:
lazily (MNT_DETACH: open files stay valid and nothing is lost; the client simply no longer
has its folder there). A folder renamed or swapped for a symlink meanwhile fails the check.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os

from guardd.cloud.beneath import open_dir, parts_of

MNT_DETACH = 2

_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)


def mount_id(fd: int) -> int:
    """The id of the mount an open descriptor is on (as in /proc/self/mountinfo)."""
    with open(f"/proc/self/fdinfo/{fd}") as info:
        for line in info:
            if line.startswith("mnt_id:"):
                return int(line.split()[1])
    raise OSError(errno.ENOENT, "no mount id for this descriptor")


def detach(root_fd: int, relative: str, expected_mount_id: int) -> None:
    """Lazily unmount the mount at `relative` under the root, if it is still the mount
    `expected_mount_id`; OSError otherwise, or when the kernel refuses."""
    parts = parts_of(relative)
    parent = open_dir(root_fd, "/".join(parts[:-1]))
    try:
        fd = os.open(parts[-1], os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=parent)
    finally:
        os.close(parent)
    try:
        if mount_id(fd) != expected_mount_id:
            raise OSError(errno.ESTALE, "this is not the mount guardd saw there")
        if _libc.umount2(os.fsencode(f"/proc/self/fd/{fd}"), MNT_DETACH) != 0:
            err = ctypes.get_errno()
            raise OSError(err, os.strerror(err), relative)
    finally:
        os.close(fd)
