"""The daemon's SQLite store: devices, held volumes, and what survives a close and reopen."""

from __future__ import annotations

import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from guardd.store.db import HeldVolume, Store

DEV1 = "/sys/devices/pci0000:00/0000:00:14.0/usb2/2-1"
DEV2 = "/sys/devices/pci0000:00/0000:00:14.0/usb2/2-2"
ID1 = "46f4:0001:'SCHOOL-1'"
ID2 = "46f4:0001:'SCHOOL-2'"
VFAT = HeldVolume("sda", "vfat", "1234-ABCD", False)
NTFS = HeldVolume("sda2", "ntfs", "0123456789ABCDEF", False)


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "state" / "guardd.db"


@pytest.fixture
def store(db_path: Path) -> Iterator[Store]:
    opened = Store.open(db_path)
    yield opened
    opened.close()


def view(device_id: str, verdict: str) -> dict[str, object]:
    return {"id": device_id, "verdict": verdict, "volumes": [], "serial": "Ünï\n"}


def test_open_creates_a_private_database(db_path: Path, store: Store) -> None:
    assert db_path.exists()
    assert stat.S_IMODE(db_path.stat().st_mode) == 0o600
    assert store.devices() == []


def test_put_device_and_list_in_path_order(store: Store) -> None:
    store.put_device(DEV2, ID2, view("2-2", "allowed"), 10.0)
    store.put_device(DEV1, ID1, view("2-1", "blocked"), 11.0)
    assert store.devices() == [view("2-1", "blocked"), view("2-2", "allowed")]


def test_put_device_replaces_the_previous_view(store: Store) -> None:
    store.put_device(DEV1, ID1, view("2-1", "allowed"), 10.0)
    store.put_device(DEV1, ID1, view("2-1", "blocked"), 12.0)
    assert store.devices() == [view("2-1", "blocked")]


def test_remove_device_forgets_it_and_its_held_volumes(store: Store) -> None:
    store.put_device(DEV1, ID1, view("2-1", "blocked"), 10.0)
    store.put_device(DEV2, ID2, view("2-2", "allowed"), 10.0)
    store.hold_volumes(DEV1, ID1, [VFAT])
    store.remove_device(DEV1)
    assert store.devices() == [view("2-2", "allowed")]
    assert store.held_volumes(DEV1, ID1) == []
    store.remove_device("/sys/never/there")  # not an error
    assert len(store.devices()) == 1


def test_held_volumes_round_trip(store: Store) -> None:
    partitioned = HeldVolume("sdb", "", "", True)
    store.hold_volumes(DEV1, ID1, [VFAT, NTFS, partitioned])
    assert store.held_volumes(DEV1, ID1) == [VFAT, NTFS, partitioned]
    assert store.held_volumes(DEV2, ID1) == []


def test_held_volumes_of_another_identity_are_not_given(store: Store) -> None:
    # Another stick in the same port must not inherit (or be judged by) the old one's volumes.
    store.hold_volumes(DEV1, ID1, [VFAT])
    assert store.held_volumes(DEV1, ID2) == []
    assert store.held_volumes(DEV1, "46f4:0001:None") == []
    assert store.held_volumes(DEV1, ID1) == [VFAT]  # still there for the right stick


def test_hold_volumes_replaces_and_release_forgets(store: Store) -> None:
    store.hold_volumes(DEV1, ID1, [VFAT])
    store.hold_volumes(DEV1, ID1, [NTFS])
    assert store.held_volumes(DEV1, ID1) == [NTFS]
    store.hold_volumes(DEV2, ID2, [VFAT])
    store.release_volumes(DEV1)
    assert store.held_volumes(DEV1, ID1) == []
    assert store.held_volumes(DEV2, ID2) == [VFAT]


def test_forget_absent(store: Store) -> None:
    store.put_device(DEV1, ID1, view("2-1", "blocked"), 10.0)
    store.put_device(DEV2, ID2, view("2-2", "blocked"), 10.0)
    store.hold_volumes(DEV1, ID1, [VFAT])
    store.hold_volumes(DEV2, ID2, [NTFS])
    store.forget_absent({DEV2, "/sys/other"})
    assert store.devices() == [view("2-2", "blocked")]
    assert store.held_volumes(DEV1, ID1) == []
    assert store.held_volumes(DEV2, ID2) == [NTFS]
    store.forget_absent(set())
    assert store.devices() == []
    assert store.held_volumes(DEV2, ID2) == []


def test_reopen_after_close_keeps_rows(db_path: Path) -> None:
    first = Store.open(db_path)
    first.put_device(DEV1, ID1, view("2-1", "blocked"), 10.0)
    first.hold_volumes(DEV1, ID1, [VFAT])
    first.close()
    second = Store.open(db_path)
    try:
        assert second.devices() == [view("2-1", "blocked")]
        assert second.held_volumes(DEV1, ID1) == [VFAT]
    finally:
        second.close()


def test_rows_are_committed_without_a_close(db_path: Path, store: Store) -> None:
    # The daemon may be killed: a second connection must see rows written by the first.
    store.put_device(DEV1, ID1, view("2-1", "allowed"), 10.0)
    store.hold_volumes(DEV1, ID1, [VFAT])
    other = Store.open(db_path)
    try:
        assert other.devices() == [view("2-1", "allowed")]
        assert other.held_volumes(DEV1, ID1) == [VFAT]
    finally:
        other.close()
