"""Throw-away GnuPG homes and real ed25519 keys for the signing tests (no tests here).

Homes are short paths under /tmp (gpg-agent's socket path is limited to ~107 bytes) and are
removed after the test, their agents killed first (`gpgconf --homedir H --kill all`).

Never give gpg `-o /dev/null` as root: when gpg fails it deletes its output file, and that
file would be /dev/null. Everything here reads gpg's stdout instead.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import gnupg
import pytest

DAY = 86400


def short_dir(prefix: str) -> Path:
    """A fresh private folder with a short path under /tmp."""
    path = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
    path.chmod(0o700)
    return path


def kill_agents(home: Path) -> None:
    subprocess.run(
        ["gpgconf", "--homedir", str(home), "--kill", "all"], capture_output=True, check=False
    )


def gpg_cli(
    home: Path, *args: str, data: bytes = b"", faked_time: int | None = None
) -> subprocess.CompletedProcess[bytes]:
    """gpg in `home` with an empty passphrase; raises with gpg's stderr when it fails."""
    cmd = ["gpg", "--homedir", str(home), "--batch", "--no-tty", "--status-fd", "2"]
    cmd += ["--passphrase", "", "--pinentry-mode", "loopback"]
    if faked_time is not None:
        cmd += ["--faked-system-time", str(faked_time)]
    done = subprocess.run([*cmd, *args], input=data, capture_output=True, check=False)
    if done.returncode != 0:
        raise AssertionError(f"gpg {' '.join(args)} failed: {done.stderr.decode()}")
    return done


class Keyring:
    """An IT member's GNUPGHOME holding secret keys."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.gpg = gnupg.GPG(gnupghome=str(home))

    def new_key(self, name: str) -> str:
        """An ed25519 signing key without passphrase (TESTING.md's recipe); its fingerprint."""
        key_input = self.gpg.gen_key_input(
            key_type="EDDSA",
            key_curve="ed25519",
            key_usage="sign",
            no_protection=True,
            name_real=name,
            name_email=f"{name.rsplit(maxsplit=1)[-1].lower()}@school.example",
        )
        fpr = str(self.gpg.gen_key(key_input).fingerprint)
        assert len(fpr) == 40, fpr
        return fpr

    def new_key_in_the_past(self, name: str, *, days_ago: int, expire: str) -> str:
        """A key created `days_ago` days ago (gpg --faked-system-time) expiring after `expire`.

        gpg refuses an expiry date in the past (`--quick-gen-key ... 2020-01-01` and
        `--quick-set-expire FPR 2020-01-01` both fail "is not a valid expiration time"), so an
        expired key is made by pretending it is `days_ago` days ago.
        """
        past = int(time.time()) - days_ago * DAY
        done = gpg_cli(
            self.home, "--quick-gen-key", f"{name} <x@school.example>", "ed25519", "sign",
            expire, faked_time=past,
        )  # fmt: skip
        return _status_arg(done.stderr, "KEY_CREATED")

    def add_signing_subkey(self, fpr: str) -> str:
        """Add an ed25519 signing subkey to `fpr`; the subkey's fingerprint."""
        before = self.subkeys(fpr)
        gpg_cli(self.home, "--quick-add-key", fpr, "ed25519", "sign", "never")
        (new,) = set(self.subkeys(fpr)) - set(before)
        return new

    def subkeys(self, fpr: str) -> list[str]:
        listing = gpg_cli(self.home, "--with-colons", "--list-keys", fpr).stdout.decode()
        lines = listing.splitlines()
        return [
            lines[i + 1].split(":")[9]
            for i, line in enumerate(lines)
            if line.startswith("sub:") and i + 1 < len(lines)
        ]

    def public(self, *fprs: str) -> bytes:
        return str(self.gpg.export_keys(list(fprs))).encode()

    def secret(self, fpr: str) -> bytes:
        return str(self.gpg.export_keys(fpr, secret=True, expect_passphrase=False)).encode()

    def revocation_certificate(self, fpr: str) -> bytes:
        """The certificate gpg stored at key creation, made importable (its ':' removed)."""
        text = (self.home / "openpgp-revocs.d" / f"{fpr}.rev").read_text()
        return text.replace(
            ":-----BEGIN PGP PUBLIC KEY BLOCK-----", "-----BEGIN PGP PUBLIC KEY BLOCK-----"
        ).encode()

    def revoke(self, fpr: str) -> None:
        """Revoke `fpr` in this keyring by importing its revocation certificate."""
        gpg_cli(self.home, "--import", data=self.revocation_certificate(fpr))

    def sign_inline(self, data: bytes, signer: str) -> str:
        """An armored signed message (the data inside it, not detached)."""
        return gpg_cli(
            self.home, "--armor", "--sign", "--local-user", signer, data=data
        ).stdout.decode()

    def sign(self, data: bytes, *signers: str, faked_time: int | None = None) -> str:
        """A detached armored signature by every signer (two -u: two signatures)."""
        args = ["--armor", "--detach-sign", "--no-textmode"]
        for fpr in signers:
            args += ["--local-user", fpr]
        return gpg_cli(self.home, *args, data=data, faked_time=faked_time).stdout.decode()


def _status_arg(stderr: bytes, keyword: str) -> str:
    for line in stderr.decode().splitlines():
        if line.startswith(f"[GNUPG:] {keyword} "):
            return line.split()[-1]
    raise AssertionError(f"no {keyword} in gpg's status: {stderr.decode()}")


class Homes:
    """Makes short temporary folders and keyrings, and cleans them all up."""

    def __init__(self) -> None:
        self.made: list[Path] = []

    def folder(self, prefix: str = "gs-") -> Path:
        path = short_dir(prefix)
        self.made.append(path)
        return path

    def keyring(self) -> Keyring:
        return Keyring(self.folder("gs-it-"))

    def cleanup(self) -> None:
        for path in self.made:
            kill_agents(path)
            shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(name="homes")
def homes_fixture() -> Iterator[Homes]:
    """Short temporary homes and keyrings, cleaned up (agents killed) after the test."""
    made = Homes()
    yield made
    made.cleanup()
