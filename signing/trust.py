"""The trusted approvers: a folder of public keys, and the gpg home the daemon verifies with.

The folder (guardd's config key `trusted_keys`, managed by `guard-admin keys`) holds one
armored public key per file, named `<FPR>.asc` after its full 40-hex primary fingerprint.
Trust is exactly "this primary fingerprint has a file here": never a key id, never gpg's web
of trust or ownertrust. A key file may carry the key's revocation (re-adding a key merges the
new material, so a revocation can be added and is never lost); revoked and expired keys stay
listed and their signatures are refused at verification.

`build_home` turns the folder into a fresh gpg home holding only those keys and returns the
pinned fingerprints; the daemon verifies with that home and that set.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import stat
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from signing.colons import ColonKey
from signing.errors import TrustError
from signing.gpg import Gpg

MAX_KEY_FILE_BYTES = 256 * 1024
HOME_MARKER = ".guardd-verify-home"
_FILE_RE = re.compile(r"([0-9A-F]{40})\.asc")


@dataclass(frozen=True)
class KeyInfo:
    """A trusted approver's key as its file describes it."""

    fpr: str
    uids: tuple[str, ...]
    expires: int | None  # epoch seconds; None: never
    revoked: bool
    expired: bool = False


def normalize_fpr(value: str) -> str:
    """A full fingerprint as IT may type it ("abcd 1234 ...", "0x...") in canonical form."""
    text = value.strip().replace(" ", "").upper()
    text = text.removeprefix("0X")
    if not re.fullmatch(r"[0-9A-F]{40}", text):
        raise TrustError(
            f"{value.strip()[:60]!r} is not a full fingerprint (40 hex digits); "
            "key ids are not accepted"
        )
    return text


@contextmanager
def _temp_gpg(binary: str | None) -> Iterator[Gpg]:
    """An isolated, empty gpg home that disappears afterwards (no agent: no socket)."""
    path = Path(tempfile.mkdtemp(prefix="guardd-k-"))
    try:
        path.chmod(0o700)
        yield Gpg(path, binary, isolated=True)
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _one_public_key(keys: list[ColonKey], what: str) -> ColonKey:
    """The single public key a file must hold, else TrustError."""
    if any(key.secret or any(sub.secret for sub in key.subkeys) for key in keys):
        raise TrustError(f"{what} holds a secret key: give the public key only (gpg --export)")
    if not keys:
        raise TrustError(f"{what} holds no OpenPGP public key")
    if len(keys) > 1:
        fprs = ", ".join(key.fingerprint for key in keys)
        raise TrustError(f"{what} holds {len(keys)} keys ({fprs}); give one key per file")
    key = keys[0]
    if not re.fullmatch(r"[0-9A-F]{40}", key.fingerprint):
        raise TrustError(f"{what} holds a key without a v4 fingerprint")
    return key


def _inspect(gpg: Gpg, data: bytes, what: str) -> ColonKey:
    if len(data) > MAX_KEY_FILE_BYTES:
        raise TrustError(f"{what} is {len(data)} bytes; a public key file is at most 256 KiB")
    if b"PRIVATE KEY BLOCK" in data:
        raise TrustError(f"{what} holds a secret key: give the public key only (gpg --export)")
    return _one_public_key(gpg.show_keys(data), what)


def _info(key: ColonKey) -> KeyInfo:
    return KeyInfo(
        fpr=key.fingerprint,
        uids=key.uids,
        expires=key.expires,
        revoked=key.revoked,
        expired=key.expired,
    )


def _check_folder(folder: Path) -> None:
    """The folder must be a real folder that only its owner (root or us) can change."""
    try:
        info = os.lstat(folder)
    except FileNotFoundError:
        raise TrustError(f"the trusted keys folder {folder} does not exist") from None
    if not stat.S_ISDIR(info.st_mode):
        raise TrustError(f"the trusted keys path {folder} is not a folder")
    if info.st_mode & 0o022:
        raise TrustError(f"the trusted keys folder {folder} is writable by other users")
    if info.st_uid not in (0, os.geteuid()):
        raise TrustError(f"the trusted keys folder {folder} belongs to another user")


def _read_key_file(path: Path) -> bytes:
    """A key file's bytes: a regular file, not a symlink, not too large."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError as e:
        raise TrustError(f"cannot read {path.name}: {e.strerror or e}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise TrustError(f"{path.name} is not a regular file")
        if info.st_size > MAX_KEY_FILE_BYTES:
            raise TrustError(f"{path.name} is too large for a public key")
        return os.read(fd, MAX_KEY_FILE_BYTES + 1)
    finally:
        os.close(fd)


def _key_files(folder: Path) -> list[tuple[str, Path]]:
    """(fingerprint, path) for every key file; anything else in the folder is refused."""
    _check_folder(folder)
    out = []
    for name in sorted(os.listdir(folder)):
        if name.startswith("."):
            continue  # temporary files of an interrupted add
        match = _FILE_RE.fullmatch(name)
        if match is None:
            raise TrustError(
                f"{folder / name} is not a key file: the folder holds only <FINGERPRINT>.asc"
            )
        out.append((match.group(1), folder / name))
    return out


def _checked_file(gpg: Gpg, fpr: str, path: Path) -> tuple[bytes, ColonKey]:
    data = _read_key_file(path)
    key = _inspect(gpg, data, path.name)
    if key.fingerprint != fpr:
        raise TrustError(f"{path.name} holds key {key.fingerprint}, not the one its name says")
    return data, key


# --- the folder ----------------------------------------------------------------------------


def add_key(folder: Path, asc_bytes: bytes, gpg_binary: str | None = None) -> str:
    """Trust the one public key in `asc_bytes`; its primary fingerprint.

    Refused (TrustError): garbage, a secret key, more than one key, no key. An already trusted
    key is updated by merging (new subkeys, a new expiry, a revocation).
    """
    folder.mkdir(mode=0o755, parents=True, exist_ok=True)
    _check_folder(folder)
    with _temp_gpg(gpg_binary) as gpg:
        key = _inspect(gpg, asc_bytes, "the key file")
        fpr = key.fingerprint
        target = folder / f"{fpr}.asc"
        if target.exists():
            gpg.import_keys(_read_key_file(target))
        imported = gpg.import_keys(asc_bytes)
        if fpr not in imported:
            raise TrustError(f"gpg would not import key {fpr} (no valid self-signed user id?)")
        exported = gpg.export_key(fpr)
        _one_public_key(gpg.show_keys(exported), "the exported key")
    _write_atomically(target, exported)
    return fpr


def list_keys(folder: Path, gpg_binary: str | None = None) -> list[KeyInfo]:
    """Every trusted key, by fingerprint; TrustError names the first bad file."""
    files = _key_files(folder)
    if not files:
        return []
    with _temp_gpg(gpg_binary) as gpg:
        return [_info(_checked_file(gpg, fpr, path)[1]) for fpr, path in files]


def remove_key(folder: Path, fpr: str) -> None:
    """Stop trusting `fpr` (a full fingerprint); TrustError if it is not trusted."""
    wanted = normalize_fpr(fpr)
    _check_folder(folder)
    target = folder / f"{wanted}.asc"
    if not target.is_file():
        raise TrustError(f"key {wanted} is not a trusted approver here")
    target.unlink()
    _fsync_dir(folder)


def _write_atomically(target: Path, data: bytes) -> None:
    tmp = target.parent / f".{target.name}.{secrets.token_hex(4)}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC | os.O_NOFOLLOW, 0o644)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, target)
    _fsync_dir(target.parent)


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# --- the daemon's verification home --------------------------------------------------------


def build_home(folder: Path, home: Path, gpg_binary: str | None = None) -> frozenset[str]:
    """Make `home` a fresh gpg home (0700) holding exactly the folder's keys; the pinned set.

    Built next to `home` and swapped in, so a failure leaves the previous home untouched. An
    existing `home` is replaced only if build_home made it (it carries a marker file): a
    mistyped path never deletes someone's folder. Any bad key file refuses the whole build
    (TrustError naming it): the caller then honours no approvals until IT fixes the folder.
    """
    files = _key_files(folder)
    if home.exists() and not (home / HOME_MARKER).is_file():
        raise TrustError(f"refusing to replace {home}: it is not a home guardd built")
    home.parent.mkdir(parents=True, exist_ok=True)
    fresh = home.parent / f".{home.name}.new-{secrets.token_hex(4)}"
    fresh.mkdir(mode=0o700)
    try:
        pinned = _fill_home(fresh, files, gpg_binary)
        (fresh / HOME_MARKER).write_text("built by guardd from the trusted keys folder\n")
    except BaseException:
        shutil.rmtree(fresh, ignore_errors=True)
        raise
    _swap(fresh, home)
    return pinned


def _fill_home(home: Path, files: list[tuple[str, Path]], gpg_binary: str | None) -> frozenset[str]:
    home.chmod(0o700)
    gpg = Gpg(home, gpg_binary, isolated=True)
    for fpr, path in files:
        data, _key = _checked_file(gpg, fpr, path)
        if fpr not in gpg.import_keys(data):
            raise TrustError(f"gpg would not import {path.name}")
    present = {key.fingerprint for key in gpg.public_keys()}
    expected = {fpr for fpr, _path in files}
    if present != expected:
        extra = ", ".join(sorted(present ^ expected))
        raise TrustError(f"the verification home does not hold exactly the trusted keys ({extra})")
    return frozenset(expected)


def _swap(fresh: Path, home: Path) -> None:
    if not home.exists():
        fresh.rename(home)
        return
    old = home.parent / f".{home.name}.old-{secrets.token_hex(4)}"
    home.rename(old)
    fresh.rename(home)
    shutil.rmtree(old, ignore_errors=True)
