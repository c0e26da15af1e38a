"""Scan before exposing: hold an admitted drive's filesystems read-only until clamd says clean.

The device gate admits an enrolled, encrypted stick; its plaintext filesystem (the dm-crypt
mapping, or the volume itself where encryption is not required) is then held: BLKROSET on the
block device, and every mount of it bind-remounted ro,nosuid,nodev,noexec. When it is mounted,
it is scanned; clean releases it as it was, infected switches the drive off (by default),
keeps it held and reports an incident. After it is ready, what is written to it is scanned as
it is closed. Runs on the event loop; scans run on worker threads.

Fail closed throughout: a hold that cannot be made switches the drive off; a rescan that
cannot run holds the drive again; enforcement comes before any record is written.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
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
from guardd.media.mounts import (
    Mount,
    hold,
    make_writable,
    mounts_of,
    open_root,
    read_mounts,
    release,
)
from guardd.scanning import Progress, ScanReport, ScanVerdict
from rules import OnInfected, Policy, VolumeFacts

RETRY_SECONDS = 5.0
RULE_UNHOLDABLE = "scan:cannot-hold"
STOPPED_UNEXPECTEDLY = "cannot scan right now: the virus scan stopped unexpectedly"
# Block contents that are not a filesystem to scan but hold one: wait for what sits on top.
CONTAINER_TYPES = frozenset(
    {"crypto_LUKS", "BitLocker", "LVM2_member", "linux_raid_member", "crypto_TCRYPT"}
)
UNHOLDABLE = (
    "blocked: this drive could not be made read-only for its virus scan, so it was switched"
    " off. Close any files open on it, then unplug it and plug it in again"
)


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
        """Scan some files or folders of it."""


class Watching(Protocol):
    """Tells the gate what changed under a folder (watchdog)."""

    def watch(self, folder: str, changed: Callable[[str], None]) -> Any:
        """Start watching; `changed(path)` is called from another thread."""

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
        read_only: Callable[[str], bool] = lambda usb_path: False,
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
        self._read_only = read_only
        self._media: dict[str, Medium] = {}
        self._containers: dict[str, str] = {}  # block name holding a filesystem -> USB path
        self._views: dict[str, dict[str, Any]] = {}

    # -- hooks from the device gate -------------------------------------------------------

    def volume_admitted(self, state: DeviceState, volume: VolumeFacts, event: BlockEvent) -> None:
        """An admitted volume: a container (encrypted, LVM...) to wait on, or a filesystem."""
        self._views[state.sys_path] = state.view()
        if volume.fs_type in CONTAINER_TYPES | self._policy().encrypted_types:
            self._containers[volume.name] = state.sys_path
        elif volume.fs_type:
            self._add(state.sys_path, event)

    def block_elsewhere(self, event: BlockEvent) -> None:
        """A block device came, changed or went: a mapping over one of ours (dm-crypt, LVM,
        stacked as deep as it goes), or one of our own volumes going away."""
        if event.action == "remove":
            self._forget(event.name)
            self._containers.pop(event.name, None)
            return
        owner = self._owner_of(_slaves(event.sys_path))
        if owner is None:
            return
        if event.fs_type in CONTAINER_TYPES:
            self._containers[event.name] = owner
        elif event.fs_type:
            self._add(owner, event)

    def device_gone(self, sys_path: str) -> None:
        """The drive was unplugged (or switched off): forget its media."""
        for name in [n for n, m in self._media.items() if m.usb_path == sys_path]:
            self._forget(name)
        for name in [n for n, p in self._containers.items() if p == sys_path]:
            del self._containers[name]
        self._views.pop(sys_path, None)

    def _owner_of(self, slaves: list[str]) -> str | None:
        for slave in slaves:
            if slave in self._containers:
                return self._containers[slave]
            if slave in self._media:
                return self._media[slave].usb_path
        return None

    # -- mounts ---------------------------------------------------------------------------

    def mounts_changed(self) -> None:
        """Mounts came or went: hold new mounts of held media, notice lost ones, start scans."""
        if not self._media:
            return
        current = read_mounts()
        for medium in list(self._media.values()):
            self._sync_mounts(medium, current)

    def _sync_mounts(self, medium: Medium, current: list[Mount]) -> None:
        mine = mounts_of(medium.devnode, medium.major, medium.minor, current)
        ids = {m.mount_id for m in mine}
        if medium.mount_id >= 0 and medium.mount_id not in ids:
            self._lost_mount(medium)
        for mount_id in [i for i in medium.held_mounts if i not in ids]:
            gone = medium.held_mounts.pop(mount_id)
            self._holds.released(gone.mount_id, gone.mountpoint)
        if medium.state is MediumState.READY:
            if mine and medium.mount_id < 0:
                self._attach(medium, mine[0])
                self._watch(medium)
            return
        if not all(
            self._hold_mount(medium, m) for m in mine if m.mount_id not in medium.held_mounts
        ):
            return
        fresh = [m for m in mine if m.mount_id != medium.scanned_mount_id]
        if medium.state is MediumState.HELD or (medium.state is MediumState.SCAN_FAILED and fresh):
            target = (fresh or mine)[:1]
            if target:
                self._start_scan(medium, target[0])

    def _hold_mount(self, medium: Medium, seen: Mount) -> bool:
        """Hold one mount; False (and the drive switched off) when it cannot be held."""
        mount = self._as_before(medium, seen)
        try:
            hold(mount)
        except MediaError as e:
            if e.errno == errno.EBUSY and seen.mount_id in medium.preexisting:
                # Mounted before guardd started and busy (a file open for writing): try again
                # shortly rather than pull a drive that is in use; it is scanned meanwhile.
                self._audit.append(
                    "media.hold_busy", {**self._ids(medium), "mountpoint": seen.mountpoint}
                )
                self._runner.call_later(RETRY_SECONDS, self.mounts_changed)
                return True
            self._unholdable(medium, str(e))
            return False
        medium.held_mounts[mount.mount_id] = mount
        self._audit.append("media.held", {**self._ids(medium), "mountpoint": mount.mountpoint})
        return True

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

    def _lost_mount(self, medium: Medium) -> None:
        """The folder guardd scanned or watched was unmounted. An unfinished scan is abandoned
        and so are pending rescans: the drive waits, held, for its next mount. A ready drive
        with nothing pending stays ready (changing it unmounted needs root's raw access)."""
        pending = medium.rescans > 0
        self._detach(medium)
        if medium.state is MediumState.SCANNING or (medium.state is MediumState.READY and pending):
            medium.state = MediumState.HELD
            medium.reason = held_reason(self._label(medium))
            medium.progress = None
            medium.scanned_mount_id = -1
            _set_ro(medium.devnode, True)

    # -- scanning -------------------------------------------------------------------------

    def _start_scan(self, medium: Medium, mount: Mount) -> None:
        try:
            root_fd = open_root(mount)
        except MediaError as e:
            self._failed(medium, f"not scanned: {e}", retry=False)
            return
        self._attach(medium, mount)
        medium.state = MediumState.SCANNING
        medium.progress = None
        medium.reason = "scanning: counting the files"
        medium.cancel = threading.Event()
        medium.generation += 1
        medium.scanned_mount_id = mount.mount_id
        generation, cancel = medium.generation, medium.cancel
        self._audit.append(
            "media.scan_started", {**self._ids(medium), "mountpoint": mount.mountpoint}
        )

        def progress(p: Progress) -> None:
            self._runner.call_soon(self._progressed, medium, generation, p)

        def work() -> ScanReport:
            try:
                return self._scanner.scan_tree(root_fd, progress=progress, cancel=cancel)
            finally:
                os.close(root_fd)  # never held past the scan: the desktop must be able to eject

        self._runner.submit(work, lambda result: self._scanned(medium, generation, result))

    def _progressed(self, medium: Medium, generation: int, progress: Progress) -> None:
        if medium.generation == generation and medium.state is MediumState.SCANNING:
            medium.progress = progress
            medium.reason = progress_reason(progress)

    def _current(self, medium: Medium, generation: int) -> bool:
        return medium.generation == generation and self._media.get(medium.name) is medium

    def _scanned(self, medium: Medium, generation: int, result: ScanReport | BaseException) -> None:
        if not self._current(medium, generation):
            return  # abandoned (unmounted, unplugged): a late answer changes nothing
        medium.progress = None
        if isinstance(result, BaseException):
            self._failed(medium, STOPPED_UNEXPECTEDLY, retry=True)
            return
        medium.report = result
        self._audit.append("media.scanned", {**self._ids(medium), "scan": _scan_data(result)})
        if result.verdict is ScanVerdict.CLEAN:
            self._ready(medium, result)
        elif result.verdict is ScanVerdict.INFECTED:
            self._infected(medium, result)
        else:
            self._failed(medium, result.reason, retry=result.retryable)

    def _ready(self, medium: Medium, report: ScanReport) -> None:
        if self._read_only(medium.usb_path):
            # Approved for reading only: clean, but the hold stays (BLKROSET, ro mounts).
            medium.state = MediumState.READY
            medium.reason = ready_reason(report) + "; read-only, as IT approved"
            self._audit.append("media.ready", {**self._ids(medium), "read_only": True})
            return

        # A FUSE filesystem that opened the device while guardd held it read-only keeps a
        # read-only handle on it: only mounting the drive again makes it writable.
        reopen = any(
            m.fstype.startswith("fuse") and m.mount_id not in medium.preexisting
            for m in medium.held_mounts.values()
        )
        _set_ro(medium.devnode, False)
        for mount in list(medium.held_mounts.values()):
            if _give_back(mount):
                self._holds.released(mount.mount_id, mount.mountpoint)
        medium.held_mounts.clear()
        medium.state = MediumState.READY
        medium.reason = ready_reason(report)
        if reopen:
            medium.reason += (
                "; it opened read-only while it was checked: eject it, then open it again to"
                " save files on it"
            )
        self._audit.append("media.ready", self._ids(medium))
        self._watch(medium)

    def _infected(self, medium: Medium, report: ScanReport) -> None:
        block = self._policy().on_infected is OnInfected.BLOCK
        medium.state = MediumState.INFECTED
        medium.reason = report.reason
        if block:
            self._switch_off(medium.usb_path, RULE_INFECTED, report.reason)  # enforcement first
        self._rehold(medium)
        action = "held read-only and switched off" if block else "held read-only"
        self._audit.append(
            "media.infected", {**self._ids(medium), "scan": _scan_data(report), "action": action}
        )
        view, scan = dict(self._views.get(medium.usb_path, {})), report.to_json()
        # The exchange may be a network share: written off the loop, and a failure is recorded.
        self._runner.submit(
            lambda: self._incidents.report(view, medium.name, scan, action),
            lambda outcome: self._reported(medium, outcome),
        )

    def _reported(self, medium: Medium, outcome: object) -> None:
        if isinstance(outcome, BaseException):
            self._audit.append(
                "incident.write_failed", {**self._ids(medium), "error": str(outcome)}
            )
        else:
            self._audit.append("incident.reported", {**self._ids(medium), "incident": str(outcome)})

    def _failed(self, medium: Medium, reason: str, retry: bool) -> None:
        medium.state = MediumState.SCAN_FAILED
        medium.reason = reason + (
            "; guardd will try again by itself" if retry else "; ask IT if you need the files on it"
        )
        self._audit.append("media.scan_failed", {**self._ids(medium), "reason": reason})
        if retry and not medium.retrying:
            medium.retrying = True
            self._runner.call_later(RETRY_SECONDS, lambda: self._retry(medium))

    def _retry(self, medium: Medium) -> None:
        """One retry chain per medium: ping clamd until it answers, then scan again."""
        if (
            self._media.get(medium.name) is not medium
            or medium.state is not MediumState.SCAN_FAILED
        ):
            medium.retrying = False
            return

        def answered(ok: object) -> None:
            if (
                self._media.get(medium.name) is not medium
                or medium.state is not MediumState.SCAN_FAILED
            ):
                medium.retrying = False
            elif ok is True:
                medium.retrying = False
                medium.state = MediumState.HELD
                medium.reason = held_reason(self._label(medium))
                self.mounts_changed()
            else:
                self._runner.call_later(RETRY_SECONDS, lambda: self._retry(medium))

        self._runner.submit(self._ping, answered)

    # -- changes on a ready drive ---------------------------------------------------------

    def _changed(self, medium: Medium, path: str) -> None:
        if medium.state is not MediumState.READY or medium.mount is None:
            return
        rel = os.path.relpath(path, medium.mount.mountpoint)
        if rel in (os.curdir, os.pardir) or rel.startswith(os.pardir + os.sep):
            return
        try:
            root_fd = open_root(medium.mount)
        except MediaError as e:
            self._rehold(medium)
            self._failed(medium, f"not scanned: {e}", retry=False)
            return
        name, generation = os.fsencode(rel), medium.generation
        medium.rescans += 1

        def work() -> ScanReport:
            try:
                return self._scanner.scan_paths(root_fd, [name])
            finally:
                os.close(root_fd)

        self._runner.submit(work, lambda result: self._rescanned(medium, generation, result))

    def _rescanned(
        self, medium: Medium, generation: int, result: ScanReport | BaseException
    ) -> None:
        medium.rescans = max(0, medium.rescans - 1)
        if not self._current(medium, generation) or medium.state is not MediumState.READY:
            return
        if isinstance(result, ScanReport) and result.verdict is ScanVerdict.CLEAN:
            return
        self._audit.append(
            "media.rescanned",
            {
                **self._ids(medium),
                "scan": _scan_data(result) if isinstance(result, ScanReport) else None,
            },
        )
        if isinstance(result, ScanReport) and result.verdict is ScanVerdict.INFECTED:
            medium.report = result
            self._infected(medium, result)
            return
        # A change could not be scanned: hold the drive again, scan it all once more.
        self._rehold(medium)
        medium.scanned_mount_id = -1
        if isinstance(result, ScanReport):
            self._failed(medium, result.reason, retry=result.retryable)
        else:
            self._failed(medium, STOPPED_UNEXPECTEDLY, retry=True)

    # -- helpers --------------------------------------------------------------------------

    def _add(self, usb_path: str, event: BlockEvent) -> None:
        known = self._media.get(event.name)
        same = (usb_path, event.devnode, event.major, event.minor)
        if known is not None and (known.usb_path, known.devnode, known.major, known.minor) == same:
            self.mounts_changed()
            return
        if known is not None:
            self._forget(event.name)  # another device under the same name: start over
        medium = Medium(usb_path, event.name, event.devnode, event.major, event.minor)
        medium.reason = held_reason(self._label(medium))
        medium.preexisting = {m.mount_id for m in read_mounts()}
        self._media[event.name] = medium
        try:
            set_read_only(event.devnode, True)
        except MediaError as e:
            self._unholdable(medium, str(e))
            return
        self._audit.append("media.held", {**self._ids(medium), "devnode": event.devnode})
        self.mounts_changed()

    def _rehold(self, medium: Medium) -> None:
        """Hold again after release (a virus or an unscannable change found on a ready drive);
        a mount that cannot be held gets the drive switched off."""
        self._detach(medium)
        _set_ro(medium.devnode, True)
        for seen in mounts_of(medium.devnode, medium.major, medium.minor, read_mounts()):
            if seen.mount_id not in medium.held_mounts and not self._hold_mount(medium, seen):
                return

    def _unholdable(self, medium: Medium, why: str) -> None:
        state_before = medium.state
        medium.state = MediumState.SCAN_FAILED
        medium.reason = UNHOLDABLE
        self._switch_off(medium.usb_path, RULE_UNHOLDABLE, UNHOLDABLE)  # enforcement first
        self._audit.append(
            "media.hold_failed", {**self._ids(medium), "error": why, "was": state_before.value}
        )

    def _attach(self, medium: Medium, mount: Mount) -> None:
        medium.mount = mount
        medium.mount_id = mount.mount_id

    def _watch(self, medium: Medium) -> None:
        """Scan what is written on the mounted, ready drive as it is closed."""
        if medium.watches or medium.mount is None:
            return
        changed = lambda path: self._runner.call_soon(self._changed, medium, path)  # noqa: E731
        try:
            medium.watches.append(self._watcher.watch(medium.mount.mountpoint, changed))
        except OSError as e:  # e.g. the inotify watch limit: cannot watch, so hold instead
            self._rehold(medium)
            self._failed(
                medium,
                f"not watched: changes to it could not be followed ({e.strerror})",
                retry=False,
            )

    def _detach(self, medium: Medium) -> None:
        """Stop what runs against the current mount: the scan, the watch."""
        medium.generation += 1
        if medium.cancel is not None:
            medium.cancel.set()
            medium.cancel = None
        for handle in medium.watches:
            self._watcher.unwatch(handle)
        medium.watches.clear()
        medium.mount = None
        medium.mount_id = -1
        medium.rescans = 0

    def _forget(self, name: str) -> None:
        medium = self._media.pop(name, None)
        if medium is not None:
            self._detach(medium)
            for mount in medium.held_mounts.values():
                self._holds.released(mount.mount_id, mount.mountpoint)
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


def _give_back(mount: Mount) -> bool:
    """Release a held mount; True when it is back as it was. A read-write original whose
    filesystem is read-only underneath (mounted while the device was held) is made writable."""
    current = next((m for m in read_mounts() if m.mount_id == mount.mount_id), None)
    try:
        if current is not None and "rw" in mount.options and "ro" in current.super_options:
            make_writable(mount)
        release(mount)
    except MediaError:
        return False
    return True


def _set_ro(devnode: str, read_only: bool) -> None:
    with contextlib.suppress(MediaError):
        set_read_only(devnode, read_only)


def _scan_data(report: ScanReport) -> dict[str, JsonValue]:
    data = report.to_json()
    return {k: data[k] for k in ("verdict", "files_scanned", "files_total", "infected", "reason")}
