"""A client of clamd, ClamAV's daemon, over its local (unix) socket.

PING, VERSION and RELOAD go through pyclamd. Scanning uses clamd's FILDES command, which
pyclamd does not have: guardd passes clamd the file descriptor it opened itself. Why:
- clamd runs as its own user in production and must not need to read the staff's files by
  path (it needs no read access to the medium at all);
- guardd opened the file relative to a folder descriptor with O_NOFOLLOW and checked it is a
  regular file on the medium; passing that very descriptor means clamd scans exactly what
  guardd checked. A path, looked up again by clamd, could by then name something else (a
  symbolic link swapped in to /etc/shadow, a file replaced): no such race with a descriptor.
INSTREAM (streaming the bytes) is only the fallback for a clamd that refuses FILDES: it is
capped by clamd's StreamMaxLength (past it the file cannot be scanned at all) and copies every
byte through guardd and the socket a second time.
"""

from __future__ import annotations

import array
import contextlib
import os
import socket
import struct
from dataclasses import dataclass

import pyclamd

from guardd.scanning.result import LIMITS_PREFIX

MAX_REPLY = 64 * 1024  # clamd's answers are one short line; more is not clamd talking
STREAM_CHUNK = 1 << 20
# clamd's answers when it does not know FILDES or got no descriptor (a TCP socket, a proxy):
# then, and only then, guardd falls back to INSTREAM.
_FILDES_REFUSED = (b"UNKNOWN COMMAND", b"No file descriptor received", b"FILDES:")


class ClamdUnavailable(Exception):  # noqa: N818 - the name the daemon's code uses
    """clamd cannot be reached or stopped answering: nothing can be scanned right now."""

    def __init__(self, message: str, timed_out: bool = False) -> None:
        super().__init__(message)
        self.timed_out = timed_out


class ClamdProtocolError(Exception):
    """clamd answered something guardd does not understand."""


class ClamdScanError(ClamdProtocolError):
    """clamd answered ERROR for one file (it could not read or unpack it)."""


@dataclass(frozen=True)
class ClamdVersion:
    """What VERSION says: engine 'ClamAV 1.4.6', database version and date (0 and '' when
    clamd loaded no versioned database: only .hdb/.ndb files, no daily.cvd/.cld/.cud)."""

    engine: str
    db_version: int
    db_date: str


def parse_version(text: str) -> ClamdVersion:
    """Parse 'ClamAV 1.4.6/27491/Mon Dec  2 09:33:02 2024' (or plain 'ClamAV 1.4.6')."""
    text = text.strip().rstrip("\0").strip()
    if not text.startswith("ClamAV "):
        raise ClamdProtocolError(f"unexpected VERSION answer: {text[:80]!r}")
    engine, _, rest = text.partition("/")
    number, _, date = rest.partition("/")
    if number and not number.isdigit():
        raise ClamdProtocolError(f"unexpected database version in {text[:80]!r}")
    return ClamdVersion(engine=engine, db_version=int(number or 0), db_date=date)


def parse_scan_reply(reply: bytes) -> tuple[str, str]:
    """('OK', '') or ('FOUND', signature) from 'fd[N]: OK' / 'stream: Sig FOUND'; raise
    ClamdScanError for '... ERROR' and ClamdProtocolError for anything else."""
    text = reply.rstrip(b"\0").decode("utf-8", "replace").strip()
    if text.endswith(" ERROR"):
        raise ClamdScanError(text.removesuffix(" ERROR").strip())
    source, sep, answer = text.partition(": ")
    if not sep or not (source.startswith("fd[") or source == "stream"):
        raise ClamdProtocolError(f"unexpected scan answer: {text[:120]!r}")
    if answer == "OK":
        return "OK", ""
    if answer.endswith(" FOUND") and len(answer) > len(" FOUND"):
        return "FOUND", answer.removesuffix(" FOUND")
    raise ClamdProtocolError(f"unexpected scan answer: {text[:120]!r}")


class _PyclamdClient(pyclamd.ClamdUnixSocket):  # type: ignore[misc]  # pyclamd is untyped
    """pyclamd's client, closing its socket when connecting fails (pyclamd leaks it)."""

    def _init_socket(self) -> None:
        try:
            super()._init_socket()
        except OSError:
            self.clamd_socket.close()
            raise


class Clamd:
    """clamd at `socket_path`; every call opens its own connection (thread-safe)."""

    def __init__(
        self, socket_path: str, timeout: float = 60.0, scan_timeout: float | None = None
    ) -> None:
        self.socket_path = str(socket_path)
        self.timeout = timeout
        # Waiting for a scan's answer: longer than clamd's own MaxScanTime (120 s by default),
        # so a slow archive comes back as Heuristics.Limits.Exceeded.MaxScanTime rather than
        # as clamd "not answering", which would stop the whole medium's scan.
        self.scan_timeout = scan_timeout if scan_timeout is not None else max(timeout, 150.0)
        self._fildes = True  # until clamd refuses it once

    def _ask(self, command: str) -> str:
        """One pyclamd call ('ping', 'version', 'reload') on a fresh connection."""
        client = None
        try:
            client = _PyclamdClient(self.socket_path, self.timeout)
            answer = getattr(client, command)()
        except OSError as e:  # pyclamd.ConnectionError is a socket.error
            raise ClamdUnavailable(f"clamd did not answer {command.upper()}: {e}") from None
        finally:
            if client is not None:  # pyclamd leaves its socket open when a call fails
                client.clamd_socket.close()
        return answer if isinstance(answer, str) else repr(answer)

    def ping(self) -> bool:
        """True when clamd answers PONG; never raises."""
        try:
            self._ask("ping")  # pyclamd raises unless the answer is PONG
        except ClamdUnavailable:
            return False
        return True

    def version(self) -> ClamdVersion:
        """Engine and database version (raises ClamdUnavailable, ClamdProtocolError)."""
        return parse_version(self._ask("version"))

    def reload(self) -> None:
        """Ask clamd to load its database again (it does so in the background)."""
        answer = self._ask("reload")
        if answer != "RELOADING":
            raise ClamdProtocolError(f"unexpected RELOAD answer: {str(answer)[:80]!r}")

    def scan_fd(self, fd: int) -> tuple[str, str]:
        """Scan the open file `fd` from its start: ('OK', '') or ('FOUND', signature)."""
        if self._fildes:
            reply = self._call(b"zFILDES\0", fd=fd)
            if not reply.startswith(_FILDES_REFUSED):
                return parse_scan_reply(reply)
            self._fildes = False
        return self._scan_stream(fd)

    def _connect(self) -> socket.socket:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self.socket_path)
        except OSError as e:
            sock.close()
            raise ClamdUnavailable(f"cannot reach clamd at {self.socket_path}: {e}") from None
        return sock

    def _call(self, command: bytes, fd: int | None = None) -> bytes:
        with self._connect() as sock:
            try:
                sock.sendall(command)
                if fd is not None:
                    # The descriptor travels as SCM_RIGHTS ancillary data; a message must
                    # carry at least one ordinary byte, which clamd ignores.
                    rights = array.array("i", [fd])
                    with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                        # clamd may have answered the command already (UNKNOWN COMMAND) and
                        # hung up: its answer is still there to read.
                        sock.sendmsg([b"\0"], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, rights)])
                sock.settimeout(self.scan_timeout)
                return _read_reply(sock)
            except TimeoutError:
                raise ClamdUnavailable("clamd did not answer in time", timed_out=True) from None
            except OSError as e:
                raise ClamdUnavailable(f"connection to clamd lost: {e}") from None

    def _scan_stream(self, fd: int) -> tuple[str, str]:
        with self._connect() as sock:
            try:
                _send(sock, b"zINSTREAM\0")
                offset = 0
                # A read error here is the medium's (EIO): it leaves as a plain OSError.
                while chunk := os.pread(fd, STREAM_CHUNK, offset):
                    _send(sock, struct.pack("!L", len(chunk)) + chunk)
                    offset += len(chunk)
                _send(sock, struct.pack("!L", 0))
            except _HungUpError:
                pass  # clamd stopped reading (StreamMaxLength): its answer says why
            sock.settimeout(self.scan_timeout)
            return _stream_answer(sock)


class _HungUpError(Exception):
    """clamd closed its end while we were still sending."""


def _send(sock: socket.socket, data: bytes) -> None:
    try:
        sock.sendall(data)
    except (BrokenPipeError, ConnectionResetError):
        raise _HungUpError from None
    except TimeoutError:
        raise ClamdUnavailable("clamd did not answer in time", timed_out=True) from None
    except OSError as e:
        raise ClamdUnavailable(f"connection to clamd lost: {e}") from None


def _stream_answer(sock: socket.socket) -> tuple[str, str]:
    try:
        return parse_scan_reply(_read_reply(sock))
    except ClamdScanError as e:
        if "size limit exceeded" in str(e):  # past StreamMaxLength: not scanned, like a limit
            return "FOUND", f"{LIMITS_PREFIX}.StreamMaxLength"
        raise
    except TimeoutError:
        raise ClamdUnavailable("clamd did not answer in time", timed_out=True) from None
    except OSError as e:
        raise ClamdUnavailable(f"connection to clamd lost: {e}") from None


def _read_reply(sock: socket.socket) -> bytes:
    """Read one answer, up to its terminating NUL (we send z-commands)."""
    reply = b""
    while not reply.endswith(b"\0"):
        data = sock.recv(4096)
        if not data:
            raise ClamdUnavailable("clamd closed the connection before answering")
        reply += data
        if len(reply) > MAX_REPLY:
            raise ClamdProtocolError("clamd's answer is too long")
    return reply
