"""The icon's colour and tooltip, and the words for every state."""

from __future__ import annotations

import time

import pytest
from tray_samples import device, folder, request, state

from tray import messages
from tray.messages import COLOURS, HEADLINES, POLICY, tooltip, verdict_words
from tray.state import OFFLINE, Status, TrayState, status_of
from tray.views import device_from

STATES: dict[Status, TrayState] = {
    Status.OK: state([device("2-1", "allowed", "hid"), device("2-2", "ready")]),
    Status.BLOCKED: state([device("2-1", "allowed", "hid"), device("2-2", "blocked")]),
    Status.SCANNING: state(
        [
            device("2-2", "blocked"),
            device("2-3", "scanning", progress={"files_done": 1234, "files_total": 5000}),
        ]
    ),
    Status.INFECTED: state([device("2-3", "scanning"), device("2-4", "infected")]),
    Status.OFFLINE: OFFLINE,
}


@pytest.mark.parametrize("status", list(Status))
def test_each_state_has_its_colour_headline_and_tooltip(status: Status) -> None:
    shown = STATES[status]
    assert status_of(shown) is status
    assert COLOURS[status].startswith("#")
    assert HEADLINES[status]
    assert tooltip(shown).startswith("USB guard")


def test_colours_differ_so_the_states_can_be_told_apart() -> None:
    assert len(set(COLOURS.values())) == len(Status)


def test_tooltips_say_what_is_happening() -> None:
    assert tooltip(STATES[Status.OK]) == "USB guard: all is well"
    assert tooltip(STATES[Status.BLOCKED]) == (
        "USB guard: SanDisk Cruzer Blade is blocked: this drive was not issued by the school"
    )
    assert "1,234 of 5,000 files" in tooltip(STATES[Status.SCANNING])
    assert "virus was found on SanDisk Cruzer Blade" in tooltip(STATES[Status.INFECTED])
    assert "not running" in tooltip(OFFLINE)
    assert "stay switched off" in tooltip(OFFLINE)  # it does not pretend all is well


def test_a_blocked_folder_alone_makes_the_state_blocked() -> None:
    shown = state([], [folder(), folder("/home/clerk/Other")])
    assert status_of(shown) is Status.BLOCKED
    assert tooltip(shown) == "USB guard: Dropbox folder Dropbox is blocked (and 1 more)"
    assert status_of(state([], [folder(state="approved")])) is Status.OK


@pytest.mark.parametrize(
    ("verdict", "words"),
    [
        ("allowed", "allowed, keyboard or mouse (not a storage device)"),
        ("blocked", "blocked: this drive was not issued by the school"),
        ("ready", "checked, ready to use"),
        ("infected", "virus found, switched off"),
        ("scanning", "checking for viruses (counting the files)"),
        ("scan-failed", "not checked yet: cannot scan right now: clamd is not running"),
    ],
)
def test_every_verdict_in_words(verdict: str, words: str) -> None:
    d = device_from(device("2-1", verdict))
    assert d is not None
    assert verdict_words(d) == words


def test_folders_and_requests_in_words() -> None:
    until = time.mktime((2026, 11, 24, 17, 0, 0, 0, 0, -1))
    [blocked, approved, allowed] = (
        state(
            [], [folder(), folder(state="approved", until=until), folder(state="allowed")]
        ).folders
        or ()
    )
    assert messages.folder_line(blocked) == (
        "Dropbox folder Dropbox: blocked: personal cloud storage is not allowed on school machines"
    )
    assert (
        messages.folder_line(approved) == "Dropbox folder Dropbox: approved until Tue 24 Nov 17:00"
    )
    assert messages.folder_line(allowed) == "Dropbox folder Dropbox: allowed"
    lines = [
        messages.request_line(r)
        for r in state(
            requests=[
                request("a", "pending"),
                request("b", "approved", until=until, read_only=True),
                request("c", "denied", detail="use the school OneDrive"),
                request("d", "expired"),
                request("e", "revoked", detail="project over"),
            ]
        ).requests
    ]
    what = "Cruzer Blade (serial CLERK-1)"
    assert lines == [
        f"{what}: ended by IT: project over",
        f"{what}: ended (its time is up)",
        f"{what}: denied: use the school OneDrive",
        f"{what}: approved until Tue 24 Nov 17:00, read-only",
        f"{what}: waiting for IT",
    ]


def test_the_policy_is_two_plain_sentences() -> None:
    assert POLICY.count(". ") == 1
    assert POLICY.endswith(".")
    assert "exception" in POLICY


def test_details_say_what_to_do() -> None:
    d = device_from(device())
    assert d is not None
    details = messages.device_details(d)
    assert details.title == "SanDisk Cruzer Blade"
    assert "Request an exception..." in details.body
    [f] = state([], [folder()]).folders or ()
    assert "untouched" in messages.folder_details(f).body
    assert (
        "could not be sent: guardd is not running"
        in messages.request_failed("x", "guardd is not running").body
    )
