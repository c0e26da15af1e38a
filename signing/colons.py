"""gpg's colon key listings (--with-colons) read into keys, subkeys and user ids.

Pure. Used on the output of `--show-keys` (a key file, before trusting it) and
`--list-secret-keys` (IT's signing keys). Reference: doc/DETAILS in GnuPG, "Format of the
colon listings". Field numbers below are 1-based as in that document.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_ESCAPE = re.compile(rb"\\x([0-9a-fA-F]{2})")
_PRIMARY = {"pub": False, "sec": True}
_SUB = {"sub": False, "ssb": True}


@dataclass(frozen=True)
class ColonSubkey:
    """A subkey record (sub/ssb) and its fingerprint."""

    fingerprint: str
    validity: str  # field 2: "r" revoked, "e" expired, "i" invalid, "-"/"u"/... otherwise
    caps: str  # field 12: "s" sign, "e" encrypt, "c" certify, "a" authenticate
    expires: int | None
    secret: bool


@dataclass(frozen=True)
class ColonKey:
    """A primary key record (pub/sec) with its fingerprint, user ids and subkeys.

    For a primary key, field 12 holds the key's own usage in lowercase and the usable usage of
    the whole key (primary and subkeys) in uppercase: "S" means the key can sign somehow.
    """

    fingerprint: str
    secret: bool
    validity: str
    caps: str
    created: int | None
    expires: int | None
    uids: tuple[str, ...]
    subkeys: tuple[ColonSubkey, ...]

    @property
    def revoked(self) -> bool:
        return self.validity == "r"

    @property
    def expired(self) -> bool:
        return self.validity == "e"

    @property
    def can_sign(self) -> bool:
        return "S" in self.caps


def unescape(value: str) -> str:
    """A colon field with gpg's C-style \\xHH escapes (":" is "\\x3a") decoded."""
    raw = _ESCAPE.sub(lambda m: bytes([int(m.group(1), 16)]), value.encode("utf-8"))
    return raw.decode("utf-8", errors="replace")


def _int(value: str) -> int | None:
    return int(value) if value.isdigit() else None


class _Builder:
    def __init__(self, record: list[str], secret: bool) -> None:
        self.secret = secret
        self.validity = record[1]
        self.caps = record[11]
        self.created = _int(record[5])
        self.expires = _int(record[6])
        self.fingerprint = ""
        self.uids: list[str] = []
        self.subkeys: list[ColonSubkey] = []
        self.sub: list[str] | None = None  # the sub/ssb record waiting for its fpr
        self.sub_secret = False

    def fpr(self, value: str) -> None:
        if self.sub is None:
            if not self.fingerprint:
                self.fingerprint = value.upper()
            return
        record = self.sub
        self.subkeys.append(
            ColonSubkey(value.upper(), record[1], record[11], _int(record[6]), self.sub_secret)
        )
        self.sub = None

    def freeze(self) -> ColonKey:
        return ColonKey(
            fingerprint=self.fingerprint,
            secret=self.secret,
            validity=self.validity,
            caps=self.caps,
            created=self.created,
            expires=self.expires,
            uids=tuple(self.uids),
            subkeys=tuple(self.subkeys),
        )


def parse_colons(text: str) -> list[ColonKey]:
    """Every primary key in a colon listing, in order. Records we do not need are skipped."""
    keys: list[ColonKey] = []
    current: _Builder | None = None
    for line in text.splitlines():
        record = line.split(":")
        if len(record) < 12:
            record += [""] * (12 - len(record))
        kind = record[0]
        if kind in _PRIMARY:
            if current is not None:
                keys.append(current.freeze())
            current = _Builder(record, _PRIMARY[kind])
        elif current is None:
            continue
        elif kind in _SUB:
            current.sub = record
            current.sub_secret = _SUB[kind]
        elif kind == "fpr":
            current.fpr(record[9])
        elif kind == "uid":
            current.uids.append(unescape(record[9]))
    if current is not None:
        keys.append(current.freeze())
    return keys
