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

A scan of a whole medium sends thousands of files: each of the scanner's workers keeps one
connection open for them (a ClamdSession: clamd's IDSESSION, one FILDES at a time, each answer
checked against its request number) instead of connecting once per file, as clamdscan does.
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
# ... and when it does not know IDSESSION: then each file goes on a connection of its own.
_SESSION_REFUSED = (b"UNKNOWN COMMAND", b"COMMAND UNAVAILABLE")


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
        self._sessions = True  # likewise for IDSESSION

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

    def session(self) -> ClamdSession:
        """A connection kept open for many scans (close it when done); not thread-safe: one
        per thread."""
        return ClamdSession(self)

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
                    with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                        # clamd may have answered the command already (UNKNOWN COMMAND) and
                        # hung up: its answer is still there to read.
                        _send_fd(sock, fd)
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


class _SessionLostError(Exception):
    """clamd closed a session before answering a request (nothing of an answer came)."""


class ClamdSession:
    """FILDES scans over one connection held open (clamd's IDSESSION), one request at a time.

    Every answer must carry the number of the request it answers: anything else ends the
    session and fails that file. A connection kept from an earlier file that clamd closed
    meanwhile (its IdleTimeout, a restart) is replaced, and the file sent again on the new
    one; if that one too closes before answering, the file is sent as a single request
    (Clamd.scan_fd), which says whether clamd is there at all. Where clamd will not do
    IDSESSION or FILDES, every scan goes through Clamd.scan_fd (and so to INSTREAM where
    FILDES is refused).
    """

    def __init__(self, clamd: Clamd) -> None:
        self._clamd = clamd
        self._sock: socket.socket | None = None
        self._requests = 0  # the number of the last request on this connection

    def __enter__(self) -> ClamdSession:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """End the session (END), and close the connection."""
        sock, self._sock = self._sock, None
        if sock is None:
            return
        with contextlib.suppress(OSError):
            sock.settimeout(1.0)
            sock.sendall(b"zEND\0")
        sock.close()

    def scan_fd(self, fd: int) -> tuple[str, str]:
        """Scan the open file `fd` from its start: ('OK', '') or ('FOUND', signature)."""
        if not self._clamd._fildes or not self._clamd._sessions:
            return self._clamd.scan_fd(fd)
        try:
            reply = self._exchange(fd)
        except _SessionLostError:
            self.close()
            return self._clamd.scan_fd(fd)  # raises ClamdUnavailable if clamd is away
        except BaseException:
            self.close()
            raise
        return self._answer(reply, fd)

    def _exchange(self, fd: int) -> bytes:
        if self._sock is not None:
            try:
                return self._request(fd)
            except _SessionLostError:
                self.close()  # clamd closed the connection we kept: a new one
        return self._request(fd)

    def _request(self, fd: int) -> bytes:
        if self._sock is None:
            self._sock = self._clamd._connect()
            self._requests = 0
            self._send(b"zIDSESSION\0")
        sock = self._sock
        self._requests += 1
        self._send(b"zFILDES\0")
        try:
            _send_fd(sock, fd)
            sock.settimeout(self._clamd.scan_timeout)
            reply = _read_reply(sock, allow_empty=True)
            sock.settimeout(self._clamd.timeout)
        except (BrokenPipeError, ConnectionResetError):
            raise _SessionLostError from None
        except TimeoutError:
            raise ClamdUnavailable("clamd did not answer in time", timed_out=True) from None
        except OSError as e:
            raise ClamdUnavailable(f"connection to clamd lost: {e}") from None
        if not reply:
            raise _SessionLostError
        return reply

    def _send(self, data: bytes) -> None:
        assert self._sock is not None
        try:
            self._sock.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            raise _SessionLostError from None
        except TimeoutError:
            raise ClamdUnavailable("clamd did not answer in time", timed_out=True) from None
        except OSError as e:
            raise ClamdUnavailable(f"connection to clamd lost: {e}") from None

    def _answer(self, reply: bytes, fd: int) -> tuple[str, str]:
        prefix = b"%d: " % self._requests
        if not reply.startswith(prefix):
            self.close()  # whatever it was, this connection is not a session we can trust
            if reply.startswith(_SESSION_REFUSED):
                self._clamd._sessions = False  # a clamd (or proxy) without IDSESSION
                return self._clamd.scan_fd(fd)
            text = reply.rstrip(b"\0").decode("utf-8", "replace")
            raise ClamdProtocolError(f"unexpected answer in a session: {text[:120]!r}")
        answer = reply[len(prefix) :]
        if answer.startswith(_FILDES_REFUSED):
            self.close()
            return self._clamd.scan_fd(fd)  # finds FILDES refused too, and streams instead
        return parse_scan_reply(answer)


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


def _send_fd(sock: socket.socket, fd: int) -> None:
    """The descriptor travels as SCM_RIGHTS ancillary data; a message must carry at least one
    ordinary byte, which clamd ignores."""
    rights = array.array("i", [fd])
    sock.sendmsg([b"\0"], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, rights)])


def _read_reply(sock: socket.socket, allow_empty: bool = False) -> bytes:
    """Read one answer, up to its terminating NUL (we send z-commands); b'' if the connection
    closed before a byte of it came and `allow_empty`."""
    reply = b""
    while not reply.endswith(b"\0"):
        data = sock.recv(4096)
        if not data:
            if allow_empty and not reply:
                return b""
            raise ClamdUnavailable("clamd closed the connection before answering")
        reply += data
        if len(reply) > MAX_REPLY:
            raise ClamdProtocolError("clamd's answer is too long")
    return reply
