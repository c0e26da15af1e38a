"""Scan before exposing: hold an admitted drive's filesystems read-only until clamd says clean.

The device gate admits an enrolled, encrypted stick; its plaintext filesystem (the dm-crypt
mapping, or the volume itself where encryption is not required) is then held: BLKROSET on the
block device, and every mount of it bind-remounted ro,nosuid,nodev,noexec. When it is mounted,
it is scanned; clean releases it exactly as it was, infected keeps it held, reports an
incident and (by default) switches the drive off. After it is ready, files closed for writing
on it are scanned as they are closed. Runs on the event loop; scans run on worker threads.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import threading
from collections.abc import Callable
from typing import Any, Protocol

from guardd.audit import AuditLog, JsonValue
from guardd.devices.state import RULE_INFECTED, DeviceState
from guardd.devices.udev_source import BlockEvent
from guardd.exchange.incidents import Incidents
from guardd.media.blockdev import MediaError, set_read_only
from guardd.media.medium import (
    Medium,
    MediumState,
    held_reason,
    progress_reason,
    ready_reason,
    worst,
)
from guardd.media.mounts import Mount, hold, make_writable, mounts_of, read_mounts, release
from guardd.scanning import Progress, ScanReport, ScanVerdict
from rules import OnInfected, Policy, VolumeFacts

RETRY_SECONDS = 5.0
RULE_UNHOLDABLE = "scan:cannot-hold"
UNAVAILABLE_PREFIX = "cannot scan right now"


class Runner(Protocol):
    """Blocking work off the loop, results back on it (guardd.runner.LoopRunner)."""

    def submit(self, work: Callable[[], Any], done: Callable[[Any], None]) -> None:
        """Run `work` on a worker; `done(result or exception)` on the loop."""

    def call_soon(self, fn: Callable[..., Any], *args: Any) -> None:
        """Run on the loop, from any thread."""

    def call_later(self, delay: float, fn: Callable[[], Any]) -> None:
        """Run on the loop later."""


class Scanning(Protocol):
    """The scanner as the media gate uses it (guardd.scanning.Scanner)."""

    def scan_tree(
        self,
        root: int,
        progress: Callable[[Progress], None] | None = None,
        cancel: threading.Event | None = None,
    ) -> ScanReport:
        """Scan a whole filesystem."""

    def scan_paths(self, root_fd: int, names: list[bytes]) -> ScanReport:
        """Scan some files of it."""


class Watching(Protocol):
    """Tells the gate about files closed after writing under a folder (watchdog)."""

    def watch(self, folder: str, closed: Callable[[str], None]) -> Any:
        """Start watching; `closed(path)` is called from another thread."""

    def unwatch(self, handle: Any) -> None:
        """Stop watching."""


class HoldRecords(Protocol):
    """Where a mount's own options are kept while guardd holds it (the store)."""

    def original_options(
        self, mount_id: int, mountpoint: str, options: frozenset[str]
    ) -> frozenset[str]:
        """The options from before the first hold (recording `options` if none yet)."""

    def released(self, mount_id: int, mountpoint: str) -> None:
        """Forget them."""


class MediaGate:
    """Owns every medium of every admitted drive."""

    def __init__(  # noqa: PLR0913  (the composition root hands each collaborator in)
        self,
        *,
        scanner: Scanning,
        ping: Callable[[], bool],
        audit: AuditLog,
        incidents: Incidents,
        switch_off: Callable[[str, str, str], None],
        policy: Callable[[], Policy],
        runner: Runner,
        watcher: Watching,
        holds: HoldRecords,
    ) -> None:
        self._scanner = scanner
        self._ping = ping
        self._audit = audit
        self._incidents = incidents
        self._switch_off = switch_off
        self._policy = policy
        self._runner = runner
        self._watcher = watcher
        self._holds = holds
        self._media: dict[str, Medium] = {}
        self._containers: dict[str, str] = {}  # encrypted volume name -> USB device path
        self._views: dict[str, dict[str, Any]] = {}

    # -- hooks from the device gate -------------------------------------------------------

    def volume_admitted(self, state: DeviceState, volume: VolumeFacts, event: BlockEvent) -> None:
        """An admitted volume: an encrypted container to wait on, or a filesystem to hold."""
        self._views[state.sys_path] = state.view()
        if volume.fs_type in self._policy().encrypted_types:
            self._containers[volume.name] = state.sys_path
        elif volume.fs_type and not volume.has_partition_table:
            self._add(state.sys_path, event)

    def block_elsewhere(self, event: BlockEvent) -> None:
        """A mapping (dm-crypt) over one of our containers appeared, changed or went away."""
        if event.action == "remove":
            self._forget(event.name)
            return
        owner = next(
            (self._containers[s] for s in _slaves(event.sys_path) if s in self._containers), None
        )
        if owner is not None:
            self._add(owner, event)

    def device_gone(self, sys_path: str) -> None:
        """The drive was unplugged (or switched off): forget its media."""
        for name in [n for n, m in self._media.items() if m.usb_path == sys_path]:
            self._forget(name)
        for name in [n for n, p in self._containers.items() if p == sys_path]:
            del self._containers[name]
        self._views.pop(sys_path, None)

    # -- mounts ---------------------------------------------------------------------------

    def mounts_changed(self, mounts: list[Mount] | None = None) -> None:
        """Mounts came or went: hold new mounts of held media, notice lost ones, start scans."""
        current = read_mounts() if mounts is None else mounts
        for medium in list(self._media.values()):
            self._sync_mounts(medium, current)

    def _sync_mounts(self, medium: Medium, current: list[Mount]) -> None:
        mine = mounts_of(medium.devnode, medium.major, medium.minor, current)
        points = {m.mountpoint for m in mine}
        if medium.mountpoint and medium.mountpoint not in points:
            self._lost_mount(medium)
        if medium.state is MediumState.READY:
            if mine and not medium.mountpoint and self._open_root(medium, mine[0]):
                self._watch(medium)
            return
        for mount in mine:
            if mount.mountpoint not in medium.held_mounts and not self._hold_mount(medium, mount):
                return
        waiting = medium.state in (MediumState.HELD, MediumState.SCAN_FAILED)
        if mine and waiting and not medium.mountpoint and self._open_root(medium, mine[0]):
            medium.generation += 1
            self._scan_whole(medium)

    def _as_before(self, medium: Medium, seen: Mount) -> Mount:
        """The mount with the options it had before guardd first held it.

        A mount made while guardd held the device read-only came up read-only because of
        guardd, not because the person wanted it so: it is given back read-write.
        """
        options = seen.options
        if seen.mount_id not in medium.preexisting and "ro" in options:
            options = (options - {"ro"}) | {"rw"}
        original = self._holds.original_options(seen.mount_id, seen.mountpoint, options)
        return dataclasses.replace(seen, options=original)

    def _hold_mount(self, medium: Medium, seen: Mount) -> bool:
        mount = self._as_before(medium, seen)
        try:
            hold(mount)
        except MediaError as e:
            self._unholdable(
                medium, f"its folder {mount.mountpoint!r} could not be made read-only ({e})"
            )
            return False
        medium.held_mounts[mount.mountpoint] = mount
        self._audit.append("media.held", {**self._ids(medium), "mountpoint": mount.mountpoint})
        return True

    def _lost_mount(self, medium: Medium) -> None:
        """The folder guardd scanned or watched was unmounted: an unfinished scan is abandoned
        (the drive waits, held, for its next mount); a ready drive stays ready (changing it
        while unmounted needs raw access to the device, which only root has)."""
        self._stop_scan(medium)
        medium.held_mounts.pop(medium.mountpoint, None)
        medium.mountpoint = ""
        if medium.state is MediumState.SCANNING:
            medium.state = MediumState.HELD
            medium.reason = held_reason(self._label(medium))
            medium.progress = None

    # -- scanning -------------------------------------------------------------------------

    def _open_root(self, medium: Medium, mount: Mount) -> bool:
        """Open the mounted filesystem's root: what scans and rescans are relative to."""
        try:
            medium.root_fd = os.open(mount.mountpoint, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError as e:
            self._failed(
                medium, f"cannot scan right now: its folder could not be opened ({e.strerror})"
            )
            return False
        medium.mountpoint = mount.mountpoint
        return True

    def _scan_whole(self, medium: Medium) -> None:
        medium.state = MediumState.SCANNING
        medium.progress = Progress(0, 0)
        medium.reason = "scanning: counting the files"
        medium.cancel = threading.Event()
        generation = medium.generation
        root_fd, cancel = medium.root_fd, medium.cancel
        self._audit.append(
            "media.scan_started", {**self._ids(medium), "mountpoint": medium.mountpoint}
        )

        def progress(p: Progress) -> None:
            self._runner.call_soon(self._progressed, medium, generation, p)

        self._runner.submit(
            lambda: self._scanner.scan_tree(root_fd, progress=progress, cancel=cancel),
            lambda result: self._scanned(medium, generation, result),
        )

    def _progressed(self, medium: Medium, generation: int, progress: Progress) -> None:
        if medium.generation == generation and medium.state is MediumState.SCANNING:
            medium.progress = progress
            medium.reason = progress_reason(progress)

    def _scanned(self, medium: Medium, generation: int, result: ScanReport | BaseException) -> None:
        if medium.generation != generation or self._media.get(medium.name) is not medium:
            return  # abandoned (unmounted, unplugged): a late answer changes nothing
        if isinstance(result, BaseException):
            self._failed(medium, f"cannot scan right now: {type(result).__name__}")
            return
        medium.report = result
        medium.progress = None
        self._audit.append("media.scanned", {**self._ids(medium), "scan": _scan_data(result)})
        if result.verdict is ScanVerdict.CLEAN:
            self._ready(medium, result)
        elif result.verdict is ScanVerdict.INFECTED:
            self._infected(medium, result)
        else:
            self._failed(medium, result.reason)

    def _ready(self, medium: Medium, report: ScanReport) -> None:
        # A FUSE filesystem that opened the device while guardd held it read-only keeps a
        # read-only handle on it: only opening the drive again makes it writable.
        reopen = any(
            m.fstype.startswith("fuse") and m.mount_id not in medium.preexisting
            for m in medium.held_mounts.values()
        )
        _set_ro(medium.devnode, False)
        for mount in medium.held_mounts.values():
            _give_back(mount)
            self._holds.released(mount.mount_id, mount.mountpoint)
        medium.held_mounts.clear()
        medium.state = MediumState.READY
        medium.reason = ready_reason(report)
        if reopen:
            medium.reason += (
                "; it opened read-only while it was checked: close it and open it again to"
                " save files on it"
            )
        self._audit.append("media.ready", self._ids(medium))
        self._watch(medium)

    def _watch(self, medium: Medium) -> None:
        """Scan files as they are closed after writing, on the mounted, ready drive."""
        if not medium.watches:
            closed = lambda path: self._runner.call_soon(self._file_closed, medium, path)  # noqa: E731
            medium.watches.append(self._watcher.watch(medium.mountpoint, closed))

    def _infected(self, medium: Medium, report: ScanReport) -> None:
        self._rehold(medium)
        medium.state = MediumState.INFECTED
        medium.reason = report.reason
        block = self._policy().on_infected is OnInfected.BLOCK
        action = "held read-only and switched off" if block else "held read-only"
        view = self._views.get(medium.usb_path, {})
        incident = self._incidents.report(view, medium.name, report.to_json(), action)
        self._audit.append(
            "media.infected",
            {
                **self._ids(medium),
                "scan": _scan_data(report),
                "incident": incident,
                "action": action,
            },
        )
        if block:
            self._switch_off(medium.usb_path, RULE_INFECTED, report.reason)

    def _failed(self, medium: Medium, reason: str) -> None:
        medium.state = MediumState.SCAN_FAILED
        medium.reason = reason
        self._audit.append("media.scan_failed", {**self._ids(medium), "reason": reason})
        if reason.startswith(UNAVAILABLE_PREFIX):
            medium.reason = f"{reason}; guardd will try again by itself"
            self._runner.call_later(RETRY_SECONDS, lambda: self._retry(medium))

    def _retry(self, medium: Medium) -> None:
        if (
            self._media.get(medium.name) is not medium
            or medium.state is not MediumState.SCAN_FAILED
        ):
            return

        def answered(ok: object) -> None:
            if ok is True and medium.state is MediumState.SCAN_FAILED and medium.root_fd >= 0:
                medium.generation += 1
                self._scan_whole(medium)
            elif medium.state is MediumState.SCAN_FAILED:
                self._runner.call_later(RETRY_SECONDS, lambda: self._retry(medium))

        self._runner.submit(self._ping, answered)

    def _file_closed(self, medium: Medium, path: str) -> None:
        if medium.state is not MediumState.READY or not medium.mountpoint:
            return
        rel = os.path.relpath(path, medium.mountpoint)
        if rel.startswith(".."):
            return
        name = os.fsencode(rel)
        generation = medium.generation
        self._runner.submit(
            lambda: self._scanner.scan_paths(medium.root_fd, [name]),
            lambda result: self._rescanned(medium, generation, result),
        )

    def _rescanned(
        self, medium: Medium, generation: int, result: ScanReport | BaseException
    ) -> None:
        if medium.generation != generation or medium.state is not MediumState.READY:
            return
        if isinstance(result, ScanReport) and result.verdict is ScanVerdict.CLEAN:
            return
        if isinstance(result, ScanReport) and result.verdict is ScanVerdict.INFECTED:
            medium.report = result
            self._infected(medium, result)
            return
        # A new file could not be scanned: hold the drive again and scan it all once more.
        self._rehold(medium)
        reason = result.reason if isinstance(result, ScanReport) else UNAVAILABLE_PREFIX
        self._failed(medium, reason)

    # -- helpers --------------------------------------------------------------------------

    def _add(self, usb_path: str, event: BlockEvent) -> None:
        known = self._media.get(event.name)
        if known is not None and known.devnode == event.devnode:
            self.mounts_changed()
            return
        medium = Medium(usb_path, event.name, event.devnode, event.major, event.minor)
        medium.preexisting = {m.mount_id for m in read_mounts()}
        medium.reason = held_reason(self._label(medium))
        self._media[event.name] = medium
        try:
            set_read_only(event.devnode, True)
        except MediaError as e:
            self._unholdable(medium, f"it could not be made read-only ({e})")
            return
        self._audit.append("media.held", {**self._ids(medium), "devnode": event.devnode})
        self.mounts_changed()

    def _rehold(self, medium: Medium) -> None:
        _set_ro(medium.devnode, True)
        for seen in mounts_of(medium.devnode, medium.major, medium.minor, read_mounts()):
            if seen.mountpoint not in medium.held_mounts:
                mount = self._as_before(medium, seen)
                with contextlib.suppress(MediaError):
                    hold(mount)
                medium.held_mounts[mount.mountpoint] = mount

    def _unholdable(self, medium: Medium, why: str) -> None:
        medium.state = MediumState.SCAN_FAILED
        medium.reason = f"blocked: this drive cannot be scanned safely: {why}"
        self._audit.append("media.hold_failed", {**self._ids(medium), "reason": medium.reason})
        self._switch_off(medium.usb_path, RULE_UNHOLDABLE, medium.reason)

    def _stop_scan(self, medium: Medium) -> None:
        medium.generation += 1
        if medium.cancel is not None:
            medium.cancel.set()
        for handle in medium.watches:
            self._watcher.unwatch(handle)
        medium.watches.clear()
        if medium.root_fd >= 0:
            with contextlib.suppress(OSError):
                os.close(medium.root_fd)
            medium.root_fd = -1

    def _forget(self, name: str) -> None:
        medium = self._media.pop(name, None)
        if medium is not None:
            self._stop_scan(medium)
            self._audit.append("media.gone", self._ids(medium))

    def _label(self, medium: Medium) -> str:
        return str(self._views.get(medium.usb_path, {}).get("label") or "")

    def _ids(self, medium: Medium) -> dict[str, JsonValue]:
        view = self._views.get(medium.usb_path, {})
        return {
            "device": str(view.get("id", os.path.basename(medium.usb_path))),
            "serial": view.get("serial"),
            "medium": medium.name,
            "state": medium.state.value,
        }

    # -- what people see ------------------------------------------------------------------

    def annotate(self, view: dict[str, Any]) -> dict[str, Any]:
        """Fold the media states into a device's view (verdict, reason, scan figures)."""
        media = [m for m in self._media.values() if m.usb_path == view.get("sys_path")]
        if not media:
            return view
        view["media"] = [m.summary() for m in media]
        speaker = worst(media)
        if speaker.report is not None:
            view["scan"] = speaker.report.to_json()
        if view.get("verdict") != "allowed":
            return view
        view["verdict"] = "allowed" if speaker.state is MediumState.HELD else speaker.state.value
        view["reason"] = speaker.reason
        if speaker.progress is not None:
            view["progress"] = {
                "files_done": speaker.progress.files_done,
                "files_total": speaker.progress.files_total,
            }
        return view


def _slaves(sys_path: str) -> list[str]:
    try:
        return os.listdir(os.path.join(sys_path, "slaves"))
    except OSError:
        return []


def _give_back(mount: Mount) -> None:
    """Release a held mount; a read-write original whose filesystem is read-only underneath
    (mounted while the device was held) gets its filesystem made writable first."""
    current = next((m for m in read_mounts() if m.mount_id == mount.mount_id), None)
    with contextlib.suppress(MediaError):
        if current is not None and "rw" in mount.options and "ro" in current.super_options:
            make_writable(mount)
        release(mount)


def _set_ro(devnode: str, read_only: bool) -> None:
    with contextlib.suppress(MediaError):
        set_read_only(devnode, read_only)


def _scan_data(report: ScanReport) -> dict[str, JsonValue]:
    data = report.to_json()
    return {k: data[k] for k in ("verdict", "files_scanned", "files_total", "infected", "reason")}
