"""The menu model, built from plain data: devices, cloud folders, requests, the policy."""

from __future__ import annotations

from tray_samples import device, folder, request, state

from tray.menu import (
    POLICY_LABEL,
    REQUEST_LABEL,
    Entry,
    RequestException,
    ShowDetails,
    ShowPolicy,
    Target,
    build_menu,
    targets,
)
from tray.state import OFFLINE


def labels(menu: tuple[Entry, ...]) -> list[str]:
    return [e.label for e in menu]


def entry(menu: tuple[Entry, ...], start: str) -> Entry:
    return next(e for e in menu if e.label.startswith(start))


def test_offline_the_menu_says_so_and_still_explains() -> None:
    menu = build_menu(OFFLINE)
    assert labels(menu) == [
        "USB guard is not running",
        "New USB drives stay switched off until it is back",
        "-",
        POLICY_LABEL,
    ]
    assert menu[-1].action == ShowPolicy()
    assert [e.enabled for e in menu] == [False, False, False, True]


def test_all_well_lists_the_devices_and_offers_no_exception() -> None:
    menu = build_menu(state([device("2-1", "allowed", "hid"), device("2-2", "ready")]))
    assert labels(menu) == [
        "All is well",
        "-",
        "USB devices connected now:",
        "SanDisk Cruzer Blade: allowed, keyboard or mouse (not a storage device)",
        "SanDisk Cruzer Blade: checked, ready to use",
        "-",
        f"{REQUEST_LABEL} (nothing is blocked)",
        "My requests",
        "-",
        POLICY_LABEL,
    ]
    assert not entry(menu, REQUEST_LABEL).enabled
    assert isinstance(menu[3].action, ShowDetails)
    assert labels(entry(menu, "My requests").children) == ["You have not asked for any exception"]


def test_no_devices() -> None:
    assert "No USB devices are connected" in labels(build_menu(state([])))


def test_one_blocked_drive_is_asked_for_directly() -> None:
    menu = build_menu(state([device("2-1", "allowed", "hid"), device("2-2", "blocked")]))
    assert menu[0].label == "Something is blocked"
    assert entry(menu, REQUEST_LABEL).action == RequestException(
        Target("device", "2-2", "SanDisk Cruzer Blade")
    )


def test_only_blocked_drives_and_folders_are_targets() -> None:
    shown = state(
        [
            device("2-1", "blocked", "hid"),  # a blocked keyboard: nothing to ask for
            device("2-2", "scan-failed"),  # a school drive waiting for its scan
            device("2-3", "blocked", "composite"),  # a camera: storage
        ],
        [folder(), folder("/home/clerk/Sync", state="allowed")],
    )
    assert targets(shown) == (
        Target("device", "2-3", "SanDisk Cruzer Blade"),
        Target("folder", "/home/clerk/Dropbox", "Dropbox folder Dropbox"),
    )
    choice = entry(build_menu(shown), REQUEST_LABEL)
    assert choice.action is None
    assert [c.action for c in choice.children] == [RequestException(t) for t in targets(shown)]


def test_the_cloud_section_shows_each_folder_and_its_state() -> None:
    menu = build_menu(
        state(
            [],
            [
                folder(),
                folder("/home/clerk/OneDrive", state="approved", name="OneDrive", until=None),
                folder("/home/clerk/Nextcloud", state="allowed", name="Nextcloud"),
            ],
        )
    )
    start = labels(menu).index("Cloud folders:")
    assert labels(menu)[start + 1 : start + 4] == [
        "Dropbox folder Dropbox: blocked: personal cloud storage is not allowed on school machines",
        "OneDrive folder OneDrive: approved until an unknown time",
        "Nextcloud folder Nextcloud: allowed",
    ]
    details = menu[start + 1].action
    assert isinstance(details, ShowDetails)
    assert details.notification.body.startswith("/home/clerk/Dropbox: ")


def test_no_cloud_section_when_guardd_has_none_and_a_note_when_none_found() -> None:
    assert "Cloud folders:" not in labels(build_menu(state([], None)))
    found = labels(build_menu(state([], [])))
    assert found[found.index("Cloud folders:") + 1] == "No cloud sync folders were found"


def test_my_requests_show_where_each_stands() -> None:
    menu = build_menu(state([], None, [request("req-1", "denied", detail="use OneDrive")]))
    [line] = entry(menu, "My requests").children
    assert line.label == "Cruzer Blade (serial CLERK-1): denied: use OneDrive"
    assert not line.enabled


def test_long_lines_are_cut() -> None:
    menu = build_menu(state([device(reason="blocked: " + "very " * 100)]))
    assert all(len(e.label) <= 110 for e in menu)
