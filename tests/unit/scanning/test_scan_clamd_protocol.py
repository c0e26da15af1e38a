"""The clamd client: answer parsing (pure), and the wire protocol against a scripted socket.

The scripted server only plays the protocol's edge cases a real clamd will not produce on
demand (an answer cut short, no answer, FILDES refused); real scanning is tested against a
real clamd in tests/integration/test_scan_clamd.py.
"""

from __future__ import annotations

import contextlib
import os
import socket
import struct
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from guardd.scanning.clamd import (
    Clamd,
    ClamdProtocolError,
    ClamdScanError,
    ClamdUnavailable,
    ClamdVersion,
    parse_scan_reply,
    parse_version,
)

EICAR_LIKE = b"pretend-virus"

# --- pure parsing ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reply", "parsed"),
    [
        (b"fd[10]: OK\0", ("OK", "")),
        (
            b"fd[7]: Eicar-Test-Signature.UNOFFICIAL FOUND\0",
            ("FOUND", "Eicar-Test-Signature.UNOFFICIAL"),
        ),
        (b"stream: Win.Test.EICAR_HDB-1 FOUND\0", ("FOUND", "Win.Test.EICAR_HDB-1")),
        (
            b"fd[12]: Heuristics.Limits.Exceeded.MaxFileSize FOUND\0",
            ("FOUND", "Heuristics.Limits.Exceeded.MaxFileSize"),
        ),
        (b"fd[10]: OK\n", ("OK", "")),
    ],
)
def test_scan_answers(reply: bytes, parsed: tuple[str, str]) -> None:
    assert parse_scan_reply(reply) == parsed


def test_error_answers_raise_a_scan_error_with_clamds_words() -> None:
    with pytest.raises(ClamdScanError, match="Can't open file or directory"):
        parse_scan_reply(b"fd[10]: Can't open file or directory ERROR\0")
    with pytest.raises(ClamdScanError, match="size limit exceeded"):
        parse_scan_reply(b"INSTREAM size limit exceeded. ERROR\0")


@pytest.mark.parametrize(
    "reply",
    [b"", b"\0", b"PONG\0", b"fd[10]: MAYBE\0", b"fd[10]:  FOUND\0", b"/etc/passwd: OK\0"],
)
def test_anything_else_is_a_protocol_error(reply: bytes) -> None:
    with pytest.raises(ClamdProtocolError):
        parse_scan_reply(reply)


def test_version_with_and_without_a_versioned_database() -> None:
    assert parse_version("ClamAV 1.4.6/27491/Mon Dec  2 09:33:02 2024\0") == ClamdVersion(
        "ClamAV 1.4.6", 27491, "Mon Dec  2 09:33:02 2024"
    )
    assert parse_version("ClamAV 1.4.6") == ClamdVersion("ClamAV 1.4.6", 0, "")
    for bad in ("PONG", "ClamAV 1.4.6/abc/x", ""):
        with pytest.raises(ClamdProtocolError):
            parse_version(bad)


# --- a scripted server ---------------------------------------------------------------------

Handler = Callable[[socket.socket], None]


class Scripted:
    """A unix socket server answering each connection with `handler` (in a thread)."""

    def __init__(self, path: Path, handler: Handler) -> None:
        self.path = path
        self.handler = handler
        self.commands: list[bytes] = []
        self.server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.server.bind(str(path))
        self.server.listen(8)
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.server.accept()
            except OSError:
                return
            with conn:
                self.handler(conn)

    def close(self) -> None:
        self.server.shutdown(socket.SHUT_RDWR)
        self.server.close()
        self.thread.join(timeout=5)


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Callable[[Handler], Scripted]]:
    servers: list[Scripted] = []

    def start(handler: Handler) -> Scripted:
        servers.append(Scripted(tmp_path / f"s{len(servers)}.sock", handler))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


def read_command(conn: socket.socket) -> bytes:
    data = b""
    while not data.endswith(b"\0"):
        chunk = conn.recv(1)
        if not chunk:
            break
        data += chunk
    return data


def receive_fd(conn: socket.socket) -> int:
    """The descriptor passed with SCM_RIGHTS (with its dummy byte)."""
    _, fds, _, _ = socket.recv_fds(conn, 1, 1)
    assert len(fds) == 1
    return fds[0]


@pytest.fixture
def some_file(tmp_path: Path) -> Iterator[int]:
    path = tmp_path / "file.bin"
    path.write_bytes(b"hello " + EICAR_LIKE)
    fd = os.open(path, os.O_RDONLY)
    yield fd
    os.close(fd)


def test_fildes_passes_the_very_descriptor(
    serve: Callable[[Handler], Scripted], some_file: int
) -> None:
    seen: list[tuple[int, int, bytes]] = []

    def handler(conn: socket.socket) -> None:
        assert read_command(conn) == b"zFILDES\0"
        fd = receive_fd(conn)
        st = os.fstat(fd)
        seen.append((st.st_dev, st.st_ino, os.pread(fd, 100, 0)))
        os.close(fd)
        conn.sendall(b"fd[9]: Pretend.Virus FOUND\0")

    server = serve(handler)
    assert Clamd(str(server.path)).scan_fd(some_file) == ("FOUND", "Pretend.Virus")
    st = os.fstat(some_file)
    assert seen == [(st.st_dev, st.st_ino, b"hello " + EICAR_LIKE)]


def instream_server(fildes_answer: bytes, streamed: list[bytes]) -> Handler:
    def handler(conn: socket.socket) -> None:
        command = read_command(conn)
        if command == b"zFILDES\0":
            conn.sendall(fildes_answer)
            return
        assert command == b"zINSTREAM\0"
        data = b""
        while size := struct.unpack("!L", conn.recv(4, socket.MSG_WAITALL))[0]:
            data += conn.recv(size, socket.MSG_WAITALL)
        streamed.append(data)
        conn.sendall(b"stream: Pretend.Virus FOUND\0" if EICAR_LIKE in data else b"stream: OK\0")

    return handler


@pytest.mark.parametrize("refusal", [b"UNKNOWN COMMAND\0", b"No file descriptor received. ERROR\0"])
def test_a_refused_fildes_falls_back_to_instream_for_good(
    serve: Callable[[Handler], Scripted], some_file: int, refusal: bytes
) -> None:
    streamed: list[bytes] = []
    server = serve(instream_server(refusal, streamed))
    clamd = Clamd(str(server.path))
    assert clamd.scan_fd(some_file) == ("FOUND", "Pretend.Virus")
    assert streamed == [b"hello " + EICAR_LIKE]
    assert clamd.scan_fd(some_file) == ("FOUND", "Pretend.Virus")  # straight to INSTREAM
    assert len(streamed) == 2


def test_instream_past_the_stream_limit_counts_as_limits_exceeded(
    serve: Callable[[Handler], Scripted], some_file: int
) -> None:
    def handler(conn: socket.socket) -> None:
        if read_command(conn) == b"zFILDES\0":
            conn.sendall(b"UNKNOWN COMMAND\0")
            return
        conn.sendall(b"INSTREAM size limit exceeded. ERROR\0")

    server = serve(handler)
    status, signature = Clamd(str(server.path)).scan_fd(some_file)
    assert (status, signature) == ("FOUND", "Heuristics.Limits.Exceeded.StreamMaxLength")


def test_an_error_answer_is_a_scan_error_not_a_fallback(
    serve: Callable[[Handler], Scripted], some_file: int
) -> None:
    def handler(conn: socket.socket) -> None:
        read_command(conn)
        os.close(receive_fd(conn))
        conn.sendall(b"fd[9]: Can't read file ERROR\0")

    with pytest.raises(ClamdScanError, match="Can't read file"):
        Clamd(str(serve(handler).path)).scan_fd(some_file)


def test_an_answer_cut_short_means_unavailable(
    serve: Callable[[Handler], Scripted], some_file: int
) -> None:
    def handler(conn: socket.socket) -> None:
        read_command(conn)
        os.close(receive_fd(conn))
        conn.sendall(b"fd[9]: O")  # then clamd dies

    with pytest.raises(ClamdUnavailable, match="closed the connection") as caught:
        Clamd(str(serve(handler).path)).scan_fd(some_file)
    assert not caught.value.timed_out


def test_no_answer_times_out_as_unavailable(
    serve: Callable[[Handler], Scripted], some_file: int
) -> None:
    release = threading.Event()

    def handler(conn: socket.socket) -> None:
        read_command(conn)
        release.wait(5)

    server = serve(handler)
    try:
        with pytest.raises(ClamdUnavailable) as caught:
            Clamd(str(server.path), timeout=5, scan_timeout=0.2).scan_fd(some_file)
        assert caught.value.timed_out
    finally:
        release.set()


def test_an_endless_answer_is_a_protocol_error(
    serve: Callable[[Handler], Scripted], some_file: int
) -> None:
    def handler(conn: socket.socket) -> None:
        read_command(conn)
        with contextlib.suppress(OSError):
            conn.sendall(b"x" * 200_000)

    with pytest.raises(ClamdProtocolError, match="too long"):
        Clamd(str(serve(handler).path)).scan_fd(some_file)


# --- no clamd at all -------------------------------------------------------------------------


def test_no_socket_file(tmp_path: Path, some_file: int) -> None:
    clamd = Clamd(str(tmp_path / "absent.sock"), timeout=1)
    assert clamd.ping() is False
    with pytest.raises(ClamdUnavailable):
        clamd.version()
    with pytest.raises(ClamdUnavailable):
        clamd.reload()
    with pytest.raises(ClamdUnavailable):
        clamd.scan_fd(some_file)


def test_a_stale_socket_nobody_listens_on(tmp_path: Path, some_file: int) -> None:
    path = tmp_path / "stale.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as dead:
        dead.bind(str(path))  # the file stays; nobody accepts: ECONNREFUSED
    clamd = Clamd(str(path), timeout=1)
    assert clamd.ping() is False
    with pytest.raises(ClamdUnavailable, match="cannot reach clamd"):
        clamd.scan_fd(some_file)


def test_ping_and_version_through_pyclamd(serve: Callable[[Handler], Scripted]) -> None:
    answers = {b"nPING\n": b"PONG\n", b"nVERSION\n": b"ClamAV 1.4.6/42/Sun Nov 22 08:18:27 2026\n"}

    def handler(conn: socket.socket) -> None:
        command = conn.recv(100)
        if command in answers:
            conn.sendall(answers[command])

    clamd = Clamd(str(serve(handler).path), timeout=2)
    assert clamd.ping() is True
    assert clamd.version() == ClamdVersion("ClamAV 1.4.6", 42, "Sun Nov 22 08:18:27 2026")
