"""Detaching a sync client's FUSE mount (rclone, pCloud) from a home, by path but never
through a symlink (umount2 with UMOUNT_NOFOLLOW), lazily (MNT_DETACH: open files stay valid,
nothing is lost; the client simply no longer has its folder there)."""

from __future__ import annotations

import ctypes
import ctypes.util
import os

MNT_DETACH = 2
UMOUNT_NOFOLLOW = 8

_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)


def detach(path: str) -> None:
    """Lazily unmount the mount at `path`; OSError when the kernel refuses."""
    if _libc.umount2(os.fsencode(path), MNT_DETACH | UMOUNT_NOFOLLOW) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err), path)
