"""sd_notify: datagrams a real unix socket receives, and silence outside systemd."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from guardd.service import notify


@pytest.fixture
def manager(tmp_path: Path) -> Iterator[tuple[socket.socket, str]]:
    """A datagram socket standing in for systemd's notify socket."""
    path = str(tmp_path / "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(2)
    yield sock, path
    sock.close()


def test_ready_sends_ready_status_and_pid(
    manager: tuple[socket.socket, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    sock, path = manager
    monkeypatch.setenv("NOTIFY_SOCKET", path)
    assert notify.ready("guarding 3 USB devices")
    fields = sock.recv(4096).decode().split("\n")
    assert fields == ["READY=1", "STATUS=guarding 3 USB devices", f"MAINPID={os.getpid()}"]


def test_status_is_one_bounded_line(manager: tuple[socket.socket, str]) -> None:
    sock, path = manager
    assert notify.notify(notify.status_field("a\nb " + "x" * 500), environ={"NOTIFY_SOCKET": path})
    sent = sock.recv(4096).decode()
    assert "\n" not in sent
    assert sent.startswith("STATUS=a b x")
    assert sent.endswith("...")
    assert len(sent) == len("STATUS=") + notify.MAX_STATUS


def test_stopping(manager: tuple[socket.socket, str], monkeypatch: pytest.MonkeyPatch) -> None:
    sock, path = manager
    monkeypatch.setenv("NOTIFY_SOCKET", path)
    assert notify.stopping()
    assert sock.recv(4096).decode().startswith("STOPPING=1\nSTATUS=stopping")


def test_abstract_socket_address() -> None:
    name = f"guardd-test-{os.getpid()}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind("\0" + name)
        sock.settimeout(2)
        assert notify.notify("READY=1", environ={"NOTIFY_SOCKET": "@" + name})
        assert sock.recv(100) == b"READY=1"


@pytest.mark.parametrize("value", ["", "relative/path", "vsock:2:1234"])
def test_no_manager_means_no_op(value: str) -> None:
    assert not notify.notify("READY=1", environ={"NOTIFY_SOCKET": value})


def test_a_vanished_manager_is_not_an_error(tmp_path: Path) -> None:
    assert not notify.notify("READY=1", environ={"NOTIFY_SOCKET": str(tmp_path / "gone.sock")})
