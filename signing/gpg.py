"""A small runner over python-gnupg: sign, verify, import, export and list keys in one home.

Two kinds of home:
- IT's own keyring (`home=None` means $GNUPGHOME or ~/.gnupg) for signing. The passphrase is
  asked by gpg-agent's pinentry; it never passes through guardd, its arguments or its files.
- A dedicated home the daemon built (`isolated=True`): no gpg.conf read, no agent or dirmngr
  started, no key fetched or imported from a signature, and gpg's human messages sent to
  /dev/null so stderr carries only status lines.

Verification returns gpg's status text (python-gnupg asks for --status-fd 2 and keeps what it
read in `result.stderr`); `signing.status` reads it. Key listings use --with-colons output
read by `signing.colons`. gpg missing or not runnable raises GpgUnavailable, never a traceback.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import gnupg

from signing.colons import ColonKey, parse_colons
from signing.errors import GpgError, GpgUnavailable

ISOLATED_OPTIONS = (
    "--no-options",
    "--no-autostart",
    "--no-auto-key-retrieve",
    "--no-auto-key-import",
    "--log-file",
    "/dev/null",
)
TIMEOUT_S = 60


def find_gpg(binary: str | None = None) -> str:
    """The gpg executable to run: `binary` (a path or a name on PATH), else "gpg" on PATH."""
    name = binary or "gpg"
    if os.sep in name:
        if os.path.isfile(name) and os.access(name, os.X_OK):
            return name
        raise GpgUnavailable(f"gpg is not installed ({name} does not exist or cannot be run)")
    found = shutil.which(name)
    if found is None:
        raise GpgUnavailable(f"gpg is not installed ({name!r} is not on PATH)")
    return found


def _signing_env() -> dict[str, str] | None:
    """The environment for signing: pinentry needs GPG_TTY to ask on this terminal."""
    if "GPG_TTY" in os.environ:
        return None
    try:
        tty = os.ttyname(sys.stdin.fileno()) if sys.stdin.isatty() else None
    except (OSError, ValueError, AttributeError):  # no real stdin (a service, a test)
        tty = None
    return {**os.environ, "GPG_TTY": tty} if tty else None


class Gpg:
    """gpg in one home (None: the caller's own, from $GNUPGHOME)."""

    def __init__(
        self, home: Path | None = None, binary: str | None = None, *, isolated: bool = False
    ) -> None:
        self.home = home
        self.binary = find_gpg(binary)
        self.isolated = isolated
        self._options = list(ISOLATED_OPTIONS) if isolated else []
        if home is not None and not home.is_dir():
            raise GpgError(f"the gpg home {home} does not exist or is not a folder")
        try:
            self._gpg = gnupg.GPG(
                gnupghome=str(home) if home is not None else None,
                gpgbinary=self.binary,
                options=self._options or None,
                env=None if isolated else _signing_env(),
            )
        except OSError as e:
            raise GpgUnavailable(f"gpg is not installed or cannot be run ({self.binary})") from e
        except ValueError as e:
            raise GpgError(f"gpg does not work in {home or 'the default home'}: {e}") from e

    # --- signatures ------------------------------------------------------------------------

    def sign_detached(self, data: bytes, key_fpr: str) -> str:
        """An ASCII-armored detached signature over `data` by `key_fpr` (binary mode).

        gpg picks the key's signing subkey when it has one. The passphrase, if any, is asked by
        gpg-agent (pinentry); nothing here passes one.
        """
        args = ["--local-user", key_fpr, "--no-textmode"]
        try:
            result = self._gpg.sign(data, detach=True, clearsign=False, extra_args=args)
        except OSError as e:
            raise GpgUnavailable(f"gpg is not installed or cannot be run ({self.binary})") from e
        armored = bytes(result.data or b"").decode("ascii", errors="replace")
        if not armored.startswith("-----BEGIN PGP SIGNATURE-----"):
            detail = _last_message(getattr(result, "stderr", "") or "")
            status = getattr(result, "status", None) or "no signature made"
            raise GpgError(f"gpg could not sign with key {key_fpr}: {status}{detail}")
        return armored

    def verify_detached(self, data: bytes, armored: str) -> str:
        """gpg's status text for verifying `armored` (a detached signature) over `data`."""
        fd, sig_path = tempfile.mkstemp(prefix="guardd-sig-", suffix=".asc")
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(armored.encode("ascii", errors="replace"))
            try:
                result = self._gpg.verify_data(sig_path, data)
            except OSError as e:
                raise GpgUnavailable(
                    f"gpg is not installed or cannot be run ({self.binary})"
                ) from e
        finally:
            os.unlink(sig_path)
        status = getattr(result, "stderr", None)
        if not isinstance(status, str):
            raise GpgError("gpg's status output could not be read")
        return status

    # --- keys ------------------------------------------------------------------------------

    def import_keys(self, data: bytes) -> list[str]:
        """Import key material; the fingerprints gpg reports as imported or updated."""
        try:
            result = self._gpg.import_keys(data)
        except OSError as e:
            raise GpgUnavailable(f"gpg is not installed or cannot be run ({self.binary})") from e
        return sorted({str(fpr).upper() for fpr in (result.fingerprints or [])})

    def export_key(self, fpr: str) -> bytes:
        """The armored public key `fpr` (with its revocations and subkeys)."""
        try:
            text = self._gpg.export_keys(fpr, armor=True)
        except OSError as e:
            raise GpgUnavailable(f"gpg is not installed or cannot be run ({self.binary})") from e
        if not isinstance(text, str) or "BEGIN PGP PUBLIC KEY BLOCK" not in text:
            raise GpgError(f"gpg could not export key {fpr}")
        return text.encode("ascii")

    def public_keys(self) -> list[ColonKey]:
        """Every public key in this home."""
        return parse_colons(self._colons(["--list-keys"]))

    def secret_keys(self) -> list[ColonKey]:
        """Every key with secret material in this home (maybe only a subkey's)."""
        return parse_colons(self._colons(["--list-secret-keys"]))

    def show_keys(self, data: bytes) -> list[ColonKey]:
        """What a key file holds, without importing it (gpg --show-keys)."""
        return parse_colons(self._colons(["--show-keys"], data))

    def _colons(self, args: list[str], data: bytes | None = None) -> str:
        cmd = [self.binary, "--batch", "--no-tty", "--with-colons", "--fixed-list-mode"]
        if self.home is not None:
            cmd += ["--homedir", str(self.home)]
        cmd += [*self._options, *args]
        try:
            done = subprocess.run(  # noqa: S603 - our own gpg, a fixed argument list
                cmd,
                input=data if data is not None else b"",
                capture_output=True,
                timeout=TIMEOUT_S,
                check=False,
                env=None if self.isolated else _signing_env(),
            )
        except OSError as e:
            raise GpgUnavailable(f"gpg is not installed or cannot be run ({self.binary})") from e
        except subprocess.TimeoutExpired:
            raise GpgError(f"gpg {args[0]} did not finish in {TIMEOUT_S} s") from None
        return done.stdout.decode("utf-8", errors="replace")


def _last_message(stderr: str) -> str:
    """gpg's last human message, for an error shown to IT (never used to decide anything)."""
    messages = [line[5:] for line in stderr.splitlines() if line.startswith("gpg: ")]
    return f" ({messages[-1]})" if messages else ""
