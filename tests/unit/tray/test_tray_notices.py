"""Which notifications a change of state brings: each once, none on the first state."""

from __future__ import annotations

from typing import Any

from tray_samples import device, folder, request, state

from tray.messages import Urgency
from tray.notices import notices
from tray.state import OFFLINE


def titles(old: Any, new: Any) -> list[str]:
    return [n.title for n in notices(old, new)]


def test_the_first_state_and_reconnections_are_not_news() -> None:
    blocked = state([device("2-1", "blocked")])
    assert notices(None, blocked) == []
    assert notices(OFFLINE, blocked) == []
    assert notices(blocked, OFFLINE) == []
    assert notices(blocked, blocked) == []


def test_a_drive_blocked_checked_clean_or_infected() -> None:
    empty = state([])
    [blocked] = notices(empty, state([device("2-1", "blocked")]))
    assert blocked.title == "SanDisk Cruzer Blade blocked"
    assert "this drive was not issued by the school" in blocked.body
    assert "Request an exception..." in blocked.body
    scanning = state([device("2-1", "scanning")])
    assert titles(empty, scanning) == []
    [clean] = notices(scanning, state([device("2-1", "ready")]))
    assert clean.title == "Drive checked: no viruses"
    [virus] = notices(scanning, state([device("2-1", "infected", scan={"infected": [{}, {}]})]))
    assert virus.urgency is Urgency.CRITICAL
    assert "(2 files)" in virus.body
    assert "nothing on it was deleted" in virus.body
    assert titles(scanning, state([device("2-1", "scan-failed")])) == [
        "SanDisk Cruzer Blade not checked yet"
    ]


def test_a_blocked_keyboard_points_to_it_not_to_an_exception() -> None:
    [n] = notices(state([]), state([device("2-1", "blocked", "hid")]))
    assert "ask IT" in n.body
    assert "Request an exception" not in n.body


def test_an_exception_about_to_end_is_said_once() -> None:
    allowed = state([device("2-1", "allowed")])
    warned = state([device("2-1", "allowed", warning="your exception ends in 14 minutes")])
    [n] = notices(allowed, warned)
    assert n.title == "Your exception ends soon"
    assert "14 minutes" in n.body
    later = state([device("2-1", "allowed", warning="your exception ends in 9 minutes")])
    assert notices(warned, later) == []


def test_requests_answered() -> None:
    pending = state(requests=[request("req-1", "pending")])
    assert titles(pending, state(requests=[request("req-1", "approved", until=2e9)])) == [
        "Request approved"
    ]
    [denied] = notices(pending, state(requests=[request("req-1", "denied", detail="no reason")]))
    assert denied.title == "Request denied"
    assert ": no reason." in denied.body
    approved = state(requests=[request("req-1", "approved", until=2e9)])
    assert titles(approved, state(requests=[request("req-1", "expired")])) == ["Exception ended"]
    assert titles(approved, state(requests=[request("req-1", "revoked")])) == [
        "Exception ended by IT"
    ]
    # A new request appearing (sent from this tray) is not news: the tray said "sent" already.
    assert notices(state(requests=[]), pending) == []


def test_a_cloud_folder_blocked() -> None:
    [n] = notices(state([], []), state([], [folder()]))
    assert n.title == "Dropbox folder blocked"
    assert "untouched" in n.body
    assert notices(state([], [folder()]), state([], [folder(state="approved")])) == []
    assert notices(state([], [folder()]), state([], [folder()])) == []
