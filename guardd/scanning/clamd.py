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
connection open for them (a ClamdSession: clamd's IDSESSION, a few FILDES in flight, each
answer matched to its request by number) instead of connecting once per file and waiting for
each answer before sending the next, as clamdscan does.
"""

from __future__ import annotations

import array
import collections
import contextlib
import itertools
import os
import socket
import struct
from collections.abc import Iterator
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
    """clamd closed a session's connection (or it broke) with requests unanswered."""


# What a scan request comes back as: ('OK', '') or ('FOUND', signature), or the exception
# that stands for this one file's failure (ClamdProtocolError, ClamdScanError, or an OSError
# reading the medium for INSTREAM). ClamdUnavailable is never an answer: it is raised.
Answer = tuple[str, str] | Exception


class ClamdSession:
    """FILDES scans over one connection held open (clamd's IDSESSION), several in flight.

    submit() sends a descriptor and returns a ticket; receive() returns the next answer to
    come back, with its ticket (clamd answers in the order it finishes, each answer carrying
    the number of its request). A descriptor must stay open until its answer was received.

    Nothing is ever taken on trust: an answer to no request outstanding, or no answer, ends
    the connection; so does clamd closing it (its IdleTimeout, a restart). Whatever was then
    unanswered is asked again one file at a time, each on a connection of its own
    (Clamd.scan_fd), which also tells whether clamd is there at all. Where clamd will not do
    IDSESSION or FILDES, every request is such a single one (INSTREAM where FILDES is refused).
    Not thread-safe: one session per thread.
    """

    def __init__(self, clamd: Clamd) -> None:
        self._clamd = clamd
        self._sock: socket.socket | None = None
        self._requests = 0  # the number of the last request on this connection
        self._waiting: dict[int, tuple[int, int]] = {}  # request number: (ticket, fd)
        self._ready: collections.deque[tuple[int, Answer]] = collections.deque()
        self._buffer = b""
        self._tickets = itertools.count(1)

    def __enter__(self) -> ClamdSession:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """End the session (END) and close the connection; unanswered requests are dropped."""
        sock = self._sock
        if sock is not None and not self._waiting:
            with contextlib.suppress(OSError):
                sock.settimeout(1.0)
                sock.sendall(b"zEND\0")
        self._drop()
        self._ready.clear()

    def _drop(self) -> None:
        sock, self._sock = self._sock, None
        if sock is not None:
            sock.close()
        self._waiting.clear()
        self._buffer = b""

    def submit(self, fd: int) -> int:
        """Send the open file `fd` to be scanned from its start; its answer's ticket."""
        ticket = next(self._tickets)
        if not (self._clamd._fildes and self._clamd._sessions):
            self._ready.append((ticket, self._single(fd)))
            return ticket
        try:
            self._send_request(ticket, fd)
        except _SessionLostError:
            if all(t != ticket for t, _ in self._waiting.values()):
                self._waiting[0] = (ticket, fd)  # lost before it went: asked with the rest
            self._rescue()
        except BaseException:
            self._drop()
            raise
        return ticket

    def receive(self) -> tuple[int, Answer]:
        """The next answer (blocks until one comes): its ticket and what clamd said."""
        while not self._ready:
            if not self._waiting:
                raise RuntimeError("receive() with nothing submitted")
            try:
                self._read_answer()
            except _SessionLostError:
                self._rescue()
            except BaseException:
                self._drop()
                raise
        return self._ready.popleft()

    def _send_request(self, ticket: int, fd: int) -> None:
        with _io():
            if self._sock is None:
                self._sock = self._clamd._connect()  # raises ClamdUnavailable itself
                self._sock.settimeout(self._clamd.scan_timeout)
                self._requests = 0
                self._sock.sendall(b"zIDSESSION\0")
            self._requests += 1
            self._waiting[self._requests] = (ticket, fd)
            self._sock.sendall(b"zFILDES\0")
            _send_fd(self._sock, fd)

    def _read_answer(self) -> None:
        assert self._sock is not None  # something is waiting, so there is a connection
        while b"\0" not in self._buffer:
            with _io():
                data = self._sock.recv(4096)
            if not data:
                raise _SessionLostError
            self._buffer += data
            if len(self._buffer) > MAX_REPLY:
                raise _SessionLostError  # not clamd talking: ask each file again, alone
        reply, _, self._buffer = self._buffer.partition(b"\0")
        number, sep, answer = reply.partition(b": ")
        request = int(number) if sep and number.isdigit() else 0
        if request not in self._waiting:
            if reply.startswith(_SESSION_REFUSED):
                self._clamd._sessions = False  # a clamd (or a proxy) without IDSESSION
            raise _SessionLostError  # an answer to nothing we asked: trust none on this line
        ticket, fd = self._waiting.pop(request)
        if answer.startswith(_FILDES_REFUSED):
            self._ready.append((ticket, self._single(fd)))  # finds it refused, streams
            return
        try:
            self._ready.append((ticket, parse_scan_reply(answer)))
        except ClamdProtocolError as e:
            self._ready.append((ticket, e))

    def _rescue(self) -> None:
        """The connection is gone, or not to be trusted: each request still unanswered is
        asked again on a connection of its own."""
        waiting = sorted(self._waiting.items())
        self._drop()
        for _, (ticket, fd) in waiting:
            self._ready.append((ticket, self._single(fd)))

    def _single(self, fd: int) -> Answer:
        try:
            return self._clamd.scan_fd(fd)
        except (ClamdProtocolError, OSError) as e:  # this file's trouble; ClamdUnavailable
            return e  # (clamd's) goes up


@contextlib.contextmanager
def _io() -> Iterator[None]:
    """Socket errors of a session: a closed connection is _SessionLostError (what was asked
    on it is asked again), a timeout or anything else is clamd unavailable."""
    try:
        yield
    except (BrokenPipeError, ConnectionResetError):
        raise _SessionLostError from None
    except TimeoutError:
        raise ClamdUnavailable("clamd did not answer in time", timed_out=True) from None
    except OSError as e:
        raise ClamdUnavailable(f"connection to clamd lost: {e}") from None


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
