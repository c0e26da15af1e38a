"""Reading guardd's answers without trusting them."""

from __future__ import annotations

from tray_samples import device, folder, request

from tray.views import (
    MAX_ITEMS,
    bare_reason,
    device_from,
    devices_from,
    folder_from,
    request_from,
    requests_from,
    text,
)


def test_a_device_is_read_with_its_name_progress_and_findings() -> None:
    d = device_from(
        device(
            "2-1",
            "scanning",
            progress={"files_done": 12, "files_total": 40},
            scan={"infected": [{"path": "a", "signature": "Eicar"}]},
            warning="your exception ends in 12 minutes",
        )
    )
    assert d is not None
    assert (d.id, d.name, d.verdict, d.storage) == ("2-1", "SanDisk Cruzer Blade", "scanning", True)
    assert d.progress == (12, 40)
    assert d.infected_files == 1
    assert d.warning == "your exception ends in 12 minutes"


def test_a_school_label_names_the_device_and_reasons_lose_their_verdict() -> None:
    d = device_from(device(label="Office stick 12"))
    assert d is not None
    assert d.name == "Office stick 12"
    assert d.reason == "this drive was not issued by the school"
    assert bare_reason("scanning: counting the files", "scanning") == "counting the files"
    assert bare_reason("held read-only: opened soon", "allowed") == "held read-only: opened soon"


def test_device_chosen_strings_cannot_draw_or_overflow() -> None:
    d = device_from(device(product="Evil\x1b[2J\nDrive" + "x" * 500, manufacturer=None))
    assert d is not None
    assert "\x1b" not in d.name
    assert "\n" not in d.name
    assert len(d.name) <= 40
    assert text("a\u202eb\tc") == "a b c"  # format and control characters become spaces


def test_entries_of_the_wrong_shape_are_left_out() -> None:
    hostile: list[object] = [
        None,
        "2-1",
        [],
        {"id": 5, "verdict": "blocked"},
        {"id": "2-1"},
        device(progress={"files_done": True, "files_total": "9"}),
    ]
    found = devices_from(hostile)
    assert len(found) == 1
    assert found[0].progress is None  # a bool is not a count
    assert devices_from({"not": "a list"}) == ()
    assert len(devices_from([device(str(n)) for n in range(MAX_ITEMS + 10)])) == MAX_ITEMS


def test_folders_and_requests() -> None:
    f = folder_from(folder(state="approved", until=1_800_000_000))
    assert f is not None
    assert (f.provider, f.state, f.until) == ("Dropbox", "approved", 1_800_000_000.0)
    assert folder_from(folder(until=True)).until is None  # type: ignore[union-attr]
    assert folder_from({"path": "/x"}) is None
    r = request_from(request(state="approved", until=1_800_000_000, read_only=True))
    assert r is not None
    assert (r.what, r.read_only) == ("Cruzer Blade (serial CLERK-1)", True)
    assert request_from(request(read_only="yes")).read_only is False  # type: ignore[union-attr]
    folder_request = request_from({**request(), "device": None, "folder": "/home/a/Dropbox"})
    assert folder_request is not None
    assert folder_request.what == "folder /home/a/Dropbox"
    newest_first = requests_from([request("req-1"), request("req-2")])
    assert [r.id for r in newest_first] == ["req-2", "req-1"]
