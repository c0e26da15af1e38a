"""Paths the media primitives refuse before touching anything (no root needed)."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from guardd.media import MediaError, Mount, device_number, hold, is_read_only, release
from guardd.media import set_read_only as _set_read_only


def set_read_only(devnode: str) -> object:
    _set_read_only(devnode, True)
    return None


CALLS: list[Callable[[str], object]] = [set_read_only, is_read_only, device_number]


@pytest.mark.parametrize("call", CALLS)
@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("/etc/passwd", "not under /dev/"),
        ("/tmp/loop0", "not under /dev/"),
        ("dev/loop0", "not under /dev/"),
        ("/dev/../etc/passwd", "not a normalised"),
        ("/dev//guardd-none", "not a normalised"),
        ("/dev/guardd-none/", "not a normalised"),
        ("/dev/guardd-none\0", "not a normalised"),
        ("/dev/guardd-no-such-node", "No such file"),
        ("/dev/null", "not a block device"),
        ("/dev/shm", "not a block device"),
    ],
)
def test_refused(call: Callable[[str], object], path: str, reason: str) -> None:
    with pytest.raises(MediaError, match=reason):
        call(path)


@pytest.fixture
def dev_link() -> Iterator[str]:
    """A symbolic link under /dev/ (in /dev/shm, which anyone may write), to /dev/null."""
    if not os.path.isdir("/dev/shm"):
        pytest.skip("this system has no /dev/shm to put a symbolic link in")
    folder = tempfile.mkdtemp(prefix="guardd-test-", dir="/dev/shm")
    link = os.path.join(folder, "disk")
    os.symlink("/dev/null", link)
    yield link
    shutil.rmtree(folder)


# umockdev's preload (make test) wraps open() of /dev paths and answers ENOENT for a link
# opened with O_NOFOLLOW: still a refusal, in other words.
UNDER_UMOCKDEV = "libumockdev-preload" in os.environ.get("LD_PRELOAD", "")
LINK_REASON = "symbolic link|No such file" if UNDER_UMOCKDEV else "symbolic link"


@pytest.mark.parametrize("call", CALLS)
def test_symbolic_link_is_refused(call: Callable[[str], object], dev_link: str) -> None:
    with pytest.raises(MediaError, match=LINK_REASON):
        call(dev_link)


def _mount(mountpoint: str, mount_id: int = 999_999_999) -> Mount:
    return Mount(
        mount_id=mount_id,
        major=0,
        minor=0,
        root="/",
        mountpoint=mountpoint,
        options=frozenset({"rw", "relatime"}),
        fstype="tmpfs",
        source="tmpfs",
        super_options=frozenset({"rw"}),
    )


@pytest.mark.parametrize("action", [hold, release])
def test_hold_refuses_a_mount_point_that_shows_another_mount(
    action: Callable[[Mount], None], tmp_path: Path
) -> None:
    with pytest.raises(MediaError, match="no longer shows mount 999999999"):
        action(_mount(str(tmp_path)))


@pytest.mark.parametrize("action", [hold, release])
def test_hold_refuses_a_missing_mount_point(
    action: Callable[[Mount], None], tmp_path: Path
) -> None:
    with pytest.raises(MediaError, match="cannot open mount point"):
        action(_mount(str(tmp_path / "gone")))


@pytest.mark.parametrize("action", [hold, release])
def test_hold_refuses_a_symbolic_link_as_mount_point(
    action: Callable[[Mount], None], tmp_path: Path
) -> None:
    (tmp_path / "link").symlink_to("/")
    with pytest.raises(MediaError, match="cannot open mount point"):
        action(_mount(str(tmp_path / "link")))


@pytest.mark.parametrize("action", [hold, release])
def test_hold_refuses_a_nul_in_the_mount_point(action: Callable[[Mount], None]) -> None:
    with pytest.raises(MediaError, match="NUL byte"):
        action(_mount("/tmp\0/x"))
