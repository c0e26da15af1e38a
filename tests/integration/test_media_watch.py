"""MountWatcher on a real kernel: asyncio's add_reader wakes on mount, remount and umount."""

from __future__ import annotations

import asyncio
import os
import select
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from guardd.media import Mount, MountWatcher, hold, release

if os.geteuid() != 0:
    pytest.skip("needs root to mount", allow_module_level=True)

ENV = {k: v for k, v in os.environ.items() if k not in ("LD_PRELOAD", "UMOCKDEV_DIR")}
WAIT = 5.0


def sh(*argv: str) -> None:
    subprocess.run(argv, env=ENV, check=True, capture_output=True, timeout=30)


@pytest.fixture
def target(tmp_path: Path) -> Iterator[Path]:
    """An empty folder to mount on; unmounted at the end if a test left it mounted."""
    path = tmp_path / "watched mount"
    path.mkdir()
    yield path
    while os.path.ismount(path):
        sh("umount", "--lazy", str(path))


def ours(mounts: list[Mount], target: Path) -> list[Mount]:
    # Other processes on this machine may mount things meanwhile: look at ours only.
    return [m for m in mounts if m.mountpoint == str(target)]


def readable(fd: int) -> bool:
    return bool(select.select([fd], [], [], 0)[0])


async def next_change(watcher: MountWatcher, woken: asyncio.Event) -> tuple[list[Mount], ...]:
    """Wait for the reader callback, then collect the change."""
    await asyncio.wait_for(woken.wait(), WAIT)
    woken.clear()
    return watcher.changes()


async def scenario(target: Path) -> None:
    loop = asyncio.get_running_loop()
    woken = asyncio.Event()
    with MountWatcher() as watcher:
        loop.add_reader(watcher.fileno(), woken.set)
        try:
            await asyncio.sleep(0.05)
            assert not woken.is_set(), "readable with no mount change"
            sh("mount", "-t", "tmpfs", "-o", "size=1m,relatime", "guardd-test", str(target))
            added, removed = await next_change(watcher, woken)
            assert [m.fstype for m in ours(added, target)] == ["tmpfs"]
            assert ours(removed, target) == []
            mounted = ours(added, target)[0]
            assert mounted.source == "guardd-test"

            hold(mounted)
            added, removed = await next_change(watcher, woken)
            assert ours(removed, target) == [mounted]
            [held] = ours(added, target)
            assert held.mount_id == mounted.mount_id
            assert "ro" in held.options
            release(mounted)
            await next_change(watcher, woken)

            sh("umount", str(target))
            added, removed = await next_change(watcher, woken)
            assert [m.mount_id for m in ours(removed, target)] == [mounted.mount_id]
            assert ours(added, target) == []
        finally:
            loop.remove_reader(watcher.fileno())


def test_add_reader_sees_mount_remount_and_umount(target: Path) -> None:
    asyncio.run(scenario(target))


def test_fd_readable_only_until_changes_collects(target: Path) -> None:
    with MountWatcher() as watcher:
        watcher.changes()
        assert not readable(watcher.fileno())
        sh("mount", "-t", "tmpfs", "guardd-test", str(target))
        assert readable(watcher.fileno())
        assert [m.fstype for m in ours(watcher.changes()[0], target)] == ["tmpfs"]
        assert not readable(watcher.fileno())
        assert ours(watcher.changes()[0], target) == []
        # Collected before anything polled the fd: changes() must still leave it quiet.
        sh("umount", str(target))
        assert [m.fstype for m in ours(watcher.changes()[1], target)] == ["tmpfs"]
        assert not readable(watcher.fileno())


def test_mountinfo_itself_is_always_readable() -> None:
    # Why the epoll indirection: a plain EPOLLIN watch on mountinfo fires all the time.
    fd = os.open("/proc/self/mountinfo", os.O_RDONLY | os.O_CLOEXEC)
    try:
        assert readable(fd)
        assert readable(fd)
    finally:
        os.close(fd)


def test_close_twice() -> None:
    watcher = MountWatcher()
    fd = watcher.fileno()
    watcher.close()
    watcher.close()
    with pytest.raises(OSError, match="Bad file descriptor"):
        os.fstat(fd)
