"""The link's pure parts: reconnection pauses, when to read again, reading a snapshot (with
and without guardd's cloud folders), and the form the dialog fills."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest
from tray_samples import device, folder, request, state

from guardd.errors import ErrorCode, GuarddError
from guardd.ipc.protocol import Op
from tray.form import ExceptionForm, reason_problem, request_args
from tray.link import SCAN_REFRESH_S, Backoff, next_wake, snapshot
from tray.menu import Target
from tray.messages import EXPIRY_WARNING_S


class FakeClient:
    """Answers like guardd from plain data (a missing op: guardd's unknown-request)."""

    def __init__(self, answers: Mapping[str, object]) -> None:
        self.answers = answers
        self.asked: list[str] = []

    def call(self, op: Op | str, args: dict[str, Any] | None = None) -> object:
        self.asked.append(str(op))
        if str(op) not in self.answers:
            raise GuarddError(ErrorCode.UNKNOWN_REQUEST, f"unknown request {str(op)!r}")
        answer = self.answers[str(op)]
        if isinstance(answer, GuarddError):
            raise answer
        return answer


BASE: dict[str, object] = {
    "devices": [device()],
    "requests": [],
}


def test_backoff_doubles_to_a_ceiling_and_starts_over_once_connected() -> None:
    backoff = Backoff(first=0.5, longest=4)
    assert [backoff.next() for _ in range(6)] == [0.5, 1, 2, 4, 4, 4]
    backoff.reset()
    assert backoff.next() == 0.5


def test_next_wake_only_while_scanning_or_before_an_approval_ends() -> None:
    now = 1_000_000.0
    assert next_wake(state([device("2-1", "blocked")]), now) is None
    assert next_wake(state([device("2-1", "scanning")]), now) == SCAN_REFRESH_S
    until = now + 3600
    approved = state(requests=[request("r", "approved", until=until)])
    assert next_wake(approved, now) == pytest.approx(until - EXPIRY_WARNING_S - now + 0.5)
    assert next_wake(approved, until - 60) == pytest.approx(60.5)  # then at its end
    assert next_wake(approved, until + 1) is None
    assert next_wake(state(requests=[request("r", "pending", until=until)]), now) is None


def test_snapshot_without_cloud_folders_has_no_cloud_section() -> None:
    client = FakeClient(BASE)
    shown = snapshot(client)  # type: ignore[arg-type]
    assert shown.connected
    assert shown.folders is None
    assert [d.id for d in shown.devices] == ["2-1"]
    assert client.asked == ["devices", "cloud", "requests"]  # no hello: nothing shows it


def test_snapshot_with_cloud_folders() -> None:
    client = FakeClient({**BASE, "cloud": [folder(), {"bad": 1}]})
    shown = snapshot(client)  # type: ignore[arg-type]
    assert shown.folders is not None
    assert [f.path for f in shown.folders] == ["/home/clerk/Dropbox"]


def test_other_cloud_errors_are_not_mistaken_for_no_cloud() -> None:
    client = FakeClient({**BASE, "cloud": GuarddError(ErrorCode.UNAVAILABLE, "gone")})
    with pytest.raises(GuarddError):
        snapshot(client)  # type: ignore[arg-type]


def test_the_form_becomes_guardds_request() -> None:
    assert reason_problem("") == "Please say why you need this (a few words are enough)."
    assert reason_problem("  a  ") is not None
    assert reason_problem("x" * 501) is not None
    assert reason_problem("papers for the governors") is None
    form = ExceptionForm("  papers   for\tgovernors ", "2d", read_only=True)
    assert request_args(Target("device", "2-1", "stick"), form) == {
        "device": "2-1",
        "reason": "papers for governors",
        "duration": "2d",
        "read_only": True,
    }
    assert request_args(Target("folder", "/home/a/Dropbox", "Dropbox"), form)["folder"] == (
        "/home/a/Dropbox"
    )
