"""Blocking a folder reversibly: record its owner, mode and ACLs, then take all access away;
restore exactly what was recorded. Everything is done on a descriptor, never on a path.

Blocked means: owned by root, mode 000, no ACL. The owner can then neither list, read, add nor
change anything in it, nor give themselves access back (only the owner may chmod); the files
inside are not touched at all.
"""

from __future__ import annotations

import base64
import errno
import os
from dataclasses import dataclass
from typing import Any

ACL_ACCESS = "system.posix_acl_access"
ACL_DEFAULT = "system.posix_acl_default"
LOCKED_MODE = 0o000


@dataclass(frozen=True)
class Recorded:
    """What a folder was like before guardd blocked it."""

    dev: int
    ino: int
    uid: int
    gid: int
    mode: int
    acl_access: bytes | None
    acl_default: bytes | None

    def to_json(self) -> dict[str, Any]:
        """A JSON-safe form for the store."""
        return {
            "dev": self.dev,
            "ino": self.ino,
            "uid": self.uid,
            "gid": self.gid,
            "mode": self.mode,
            "acl_access": _b64(self.acl_access),
            "acl_default": _b64(self.acl_default),
        }

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> Recorded:
        """Back from the store (written by guardd itself; still checked)."""
        dev, ino, uid, gid, mode = (obj[k] for k in ("dev", "ino", "uid", "gid", "mode"))
        if not all(type(n) is int and n >= 0 for n in (dev, ino, uid, gid, mode)):
            raise ValueError("recorded folder numbers are not valid")
        return cls(
            dev=dev,
            ino=ino,
            uid=uid,
            gid=gid,
            mode=mode,
            acl_access=_unb64(obj.get("acl_access")),
            acl_default=_unb64(obj.get("acl_default")),
        )

    def same_folder(self, st: os.stat_result) -> bool:
        """Whether `st` is the folder this record is about."""
        return (st.st_dev, st.st_ino) == (self.dev, self.ino)


def _b64(data: bytes | None) -> str | None:
    return None if data is None else base64.b64encode(data).decode("ascii")


def _unb64(text: object) -> bytes | None:
    return base64.b64decode(text, validate=True) if isinstance(text, str) else None


def _xattr(fd: int, name: str) -> bytes | None:
    try:
        return os.getxattr(fd, name)
    except OSError as e:
        if e.errno in (errno.ENODATA, errno.ENOTSUP, errno.EOPNOTSUPP):
            return None
        raise


def _drop_xattr(fd: int, name: str) -> None:
    try:
        os.removexattr(fd, name)
    except OSError as e:
        if e.errno not in (errno.ENODATA, errno.ENOTSUP, errno.EOPNOTSUPP):
            raise


def record(fd: int) -> Recorded:
    """What the folder open at `fd` is like now."""
    st = os.fstat(fd)
    return Recorded(
        dev=st.st_dev,
        ino=st.st_ino,
        uid=st.st_uid,
        gid=st.st_gid,
        mode=st.st_mode & 0o7777,
        acl_access=_xattr(fd, ACL_ACCESS),
        acl_default=_xattr(fd, ACL_DEFAULT),
    )


def is_locked(fd: int) -> bool:
    """Whether the folder is in the blocked state."""
    st = os.fstat(fd)
    no_acl = _xattr(fd, ACL_ACCESS) is None and _xattr(fd, ACL_DEFAULT) is None
    return st.st_uid == 0 and st.st_gid == 0 and st.st_mode & 0o7777 == LOCKED_MODE and no_acl


def lock(fd: int) -> None:
    """Take every access away: the owner first (from then on only root may change the mode
    or the ACLs, so the owner cannot race guardd and give access back), then the mode, then
    the ACLs. Raises OSError when the folder is not locked afterwards."""
    os.fchown(fd, 0, 0)
    os.fchmod(fd, LOCKED_MODE)
    _drop_xattr(fd, ACL_ACCESS)
    _drop_xattr(fd, ACL_DEFAULT)
    if not is_locked(fd):
        raise OSError(errno.EAGAIN, "the folder changed while guardd was locking it")


def restore(fd: int, recorded: Recorded) -> None:
    """Put back exactly what was recorded; refuse a different folder."""
    if not recorded.same_folder(os.fstat(fd)):
        raise OSError(errno.ESTALE, "this is not the folder guardd blocked")
    os.fchown(fd, recorded.uid, recorded.gid)
    os.fchmod(fd, recorded.mode)  # after chown: chown may clear set-id bits
    for name, value in ((ACL_ACCESS, recorded.acl_access), (ACL_DEFAULT, recorded.acl_default)):
        if value is None:
            _drop_xattr(fd, name)
        else:
            os.setxattr(fd, name, value)
    os.fchmod(fd, recorded.mode)  # the ACL's mask and the mode's group bits agree again
