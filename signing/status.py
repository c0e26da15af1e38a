"""gpg's machine-readable status lines ("[GNUPG:] ...") turned into signatures and states.

Pure: takes the text gpg wrote with --status-fd, returns frozen values; never reads gpg's
human text (lines without the "[GNUPG:] " prefix are ignored). Each NEWSIG starts a signature;
the lines up to the next NEWSIG belong to it. Lines this parser does not need are skipped;
lines it needs but cannot read are kept in `malformed`, so a caller can fail closed.

Reference: doc/DETAILS in GnuPG, section "Format of the --status-fd output".
"""

from __future__ import annotations

import calendar
import time
from dataclasses import dataclass, field
from enum import StrEnum

PREFIX = "[GNUPG:] "


class SigState(StrEnum):
    """The verdict gpg gives one signature (its GOODSIG/BADSIG/... line)."""

    GOOD = "good"  # GOODSIG
    BAD = "bad"  # BADSIG: the data or the signature was changed
    EXPIRED_SIGNATURE = "expired-signature"  # EXPSIG
    EXPIRED_KEY = "expired-key"  # EXPKEYSIG: good, but the key has expired
    REVOKED_KEY = "revoked-key"  # REVKEYSIG: good, but the key has been revoked
    ERROR = "error"  # ERRSIG: could not be checked (no public key, unknown algorithm)


_RESULTS = {
    "GOODSIG": SigState.GOOD,
    "BADSIG": SigState.BAD,
    "EXPSIG": SigState.EXPIRED_SIGNATURE,
    "EXPKEYSIG": SigState.EXPIRED_KEY,
    "REVKEYSIG": SigState.REVOKED_KEY,
    "ERRSIG": SigState.ERROR,
}
# Lines that only make sense inside a signature's block.
_PER_SIGNATURE = {*_RESULTS, "VALIDSIG", "KEYEXPIRED", "KEYREVOKED", "NO_PUBKEY"}
# Lines that say the input was not what was expected.
_FAILURES = {"FAILURE", "ERROR", "BADARMOR", "UNEXPECTED", "BADMDC", "DECRYPTION_FAILED"}

ERRSIG_NO_PUBKEY = 9  # ERRSIG's rc when the key is not in the keyring


@dataclass(frozen=True)
class ValidSig:
    """The VALIDSIG line: a good signature and who made it.

    `fingerprint` is the key that made the signature (maybe a subkey); `primary_fingerprint`
    is that key's primary key, the one to pin.
    """

    fingerprint: str
    timestamp: int
    expires: int  # 0: the signature does not expire
    version: int
    pubkey_algo: int
    hash_algo: int
    sig_class: str
    primary_fingerprint: str


@dataclass(frozen=True)
class Signature:
    """One signature, from its NEWSIG to the next."""

    results: tuple[SigState, ...] = ()  # every GOODSIG/BADSIG/... line (normally one)
    key_id: str = ""  # the long key id (or fingerprint) named by the result line
    valid: tuple[ValidSig, ...] = ()  # every VALIDSIG line (normally at most one)
    key_expired: bool = False  # KEYEXPIRED
    key_revoked: bool = False  # KEYREVOKED
    no_pubkey: bool = False  # NO_PUBKEY
    error_code: int | None = None  # ERRSIG's rc
    error_fingerprint: str = ""  # ERRSIG's issuer fingerprint, when gpg gives one

    @property
    def state(self) -> SigState | None:
        """The one verdict, or None when there is none or more than one."""
        return self.results[0] if len(self.results) == 1 else None

    @property
    def validsig(self) -> ValidSig | None:
        """The one VALIDSIG, or None when there is none or more than one."""
        return self.valid[0] if len(self.valid) == 1 else None


@dataclass(frozen=True)
class StatusReport:
    """Everything the status lines said about a verification."""

    signatures: tuple[Signature, ...] = ()
    no_data: bool = False  # NODATA: no OpenPGP data, or not a signature (bad armor, garbage)
    failures: tuple[str, ...] = ()  # FAILURE/ERROR/BADARMOR/... lines, verbatim
    outside: tuple[str, ...] = ()  # signature lines seen before any NEWSIG
    malformed: tuple[str, ...] = ()  # lines we need but could not read

    @property
    def result_count(self) -> int:
        """How many verdict lines (GOODSIG, BADSIG, ...) there were in all."""
        return sum(len(sig.results) for sig in self.signatures)


@dataclass
class _Block:
    results: list[SigState] = field(default_factory=list)
    key_id: str = ""
    valid: list[ValidSig] = field(default_factory=list)
    key_expired: bool = False
    key_revoked: bool = False
    no_pubkey: bool = False
    error_code: int | None = None
    error_fingerprint: str = ""

    def freeze(self) -> Signature:
        return Signature(
            results=tuple(self.results),
            key_id=self.key_id,
            valid=tuple(self.valid),
            key_expired=self.key_expired,
            key_revoked=self.key_revoked,
            no_pubkey=self.no_pubkey,
            error_code=self.error_code,
            error_fingerprint=self.error_fingerprint,
        )


def status_lines(text: str) -> list[tuple[str, list[str]]]:
    """(keyword, arguments) for each "[GNUPG:] " line; every other line is dropped."""
    out = []
    for line in text.splitlines():
        if not line.startswith(PREFIX):
            continue
        words = line[len(PREFIX) :].split()
        if words:
            out.append((words[0], words[1:]))
    return out


def parse_status(text: str) -> StatusReport:
    """Read gpg --verify status output into a StatusReport."""
    blocks: list[_Block] = []
    no_data = False
    failures: list[str] = []
    outside: list[str] = []
    malformed: list[str] = []
    for keyword, args in status_lines(text):
        line = " ".join([keyword, *args])
        if keyword == "NEWSIG":
            blocks.append(_Block())
        elif keyword == "NODATA":
            no_data = True
        elif keyword in _FAILURES:
            failures.append(line)
        elif keyword in _PER_SIGNATURE:
            if not blocks:
                outside.append(line)
            elif not _apply(blocks[-1], keyword, args):
                malformed.append(line)
    return StatusReport(
        signatures=tuple(block.freeze() for block in blocks),
        no_data=no_data,
        failures=tuple(failures),
        outside=tuple(outside),
        malformed=tuple(malformed),
    )


def _apply(block: _Block, keyword: str, args: list[str]) -> bool:
    """Record one line in its signature's block; False when the line cannot be read."""
    if keyword in _RESULTS:
        if not args:
            return False
        block.results.append(_RESULTS[keyword])
        block.key_id = args[0]
        if keyword == "ERRSIG":
            return _apply_errsig(block, args)
        return True
    if keyword == "VALIDSIG":
        valid = parse_validsig(args)
        if valid is None:
            return False
        block.valid.append(valid)
    elif keyword == "KEYEXPIRED":
        block.key_expired = True
    elif keyword == "KEYREVOKED":
        block.key_revoked = True
    elif keyword == "NO_PUBKEY":
        block.no_pubkey = True
    return True


def _apply_errsig(block: _Block, args: list[str]) -> bool:
    # ERRSIG <keyid> <pkalgo> <hashalgo> <sig_class> <time> <rc> [<fpr>]
    if len(args) < 6 or not args[5].isdigit():
        return False
    block.error_code = int(args[5])
    if len(args) >= 7 and _is_fpr(args[6]):
        block.error_fingerprint = args[6]
    return True


def parse_validsig(args: list[str]) -> ValidSig | None:
    """VALIDSIG <fpr> <date> <ts> <expire> <ver> <res> <pkalgo> <hashalgo> <class> <primary>."""
    if len(args) < 10:
        return None
    fpr, _date, stamp, expire, version, _reserved, pkalgo, hashalgo, sig_class, primary = args[:10]
    timestamp = parse_time(stamp)
    expires = parse_time(expire)
    numbers = (version, pkalgo, hashalgo)
    if timestamp is None or expires is None or not all(n.isdigit() for n in numbers):
        return None
    if not (_is_fpr(fpr) and _is_fpr(primary)):
        return None
    return ValidSig(
        fingerprint=fpr.upper(),
        timestamp=timestamp,
        expires=expires,
        version=int(version),
        pubkey_algo=int(pkalgo),
        hash_algo=int(hashalgo),
        sig_class=sig_class.lower(),
        primary_fingerprint=primary.upper(),
    )


def parse_time(value: str) -> int | None:
    """Seconds since the epoch from a status field: digits, or ISO 8601 ("20261122T084834")."""
    if value.isdigit():
        return int(value)
    if "T" in value:
        try:
            return calendar.timegm(time.strptime(value, "%Y%m%dT%H%M%S"))
        except ValueError:
            return None
    return None


def _is_fpr(value: str) -> bool:
    # v4 fingerprints are 40 hex digits; v5 keys (64) are not used by gpg 2.2.
    return len(value) == 40 and all(c in "0123456789abcdefABCDEF" for c in value)
