"""The device gate: judge every USB device and volume, switch it on or off, record why.

Runs in-process without the socket (tests and the demo drive it directly); the daemon feeds it
events from udev. Enforcement comes first and records after, so the time from uevent to the
sysfs write stays short.
"""

from __future__ import annotations

import errno
import os
import re
import time
from collections.abc import Callable, Iterable
from typing import Any, Protocol

from guardd.audit import AuditLog, JsonValue
from guardd.devices.state import DeviceState, VolumeState
from guardd.devices.sysfs import is_root_hub, read_facts
from guardd.devices.udev_source import BlockEvent, UsbEvent
from guardd.stats import LatencyWindow
from guardd.store.db import HeldVolume, Store
from rules.device import DeviceFacts, VolumeFacts, classify
from rules.matcher import Decision, Matcher, Verdict
from rules.model import Policy

_USB_DEVICE_NAME = re.compile(r"[0-9]+-[0-9]+(\.[0-9]+)*")


class MediaHooks(Protocol):
    """What the media gate (scan before exposing) needs to hear from the device gate."""

    def volume_admitted(self, state: DeviceState, volume: VolumeFacts, event: BlockEvent) -> None:
        """An admitted device's volume was judged allowed."""

    def block_elsewhere(self, event: BlockEvent) -> None:
        """A block device not under a USB device (e.g. a dm-crypt mapping) changed."""

    def device_gone(self, sys_path: str) -> None:
        """A USB device went away."""


class ApprovalInForce(Protocol):
    """An approval that lifts a block (guardd.exceptions.approvals.Honoured)."""

    @property
    def document(self) -> Any:
        """The signed document."""

    def decision(self, label: str) -> Decision:
        """What the gate says for the device it covers."""


# What an approval may lift: a drive not issued by the school, or one not encrypted.
OVERRIDABLE = frozenset({"default:not-enrolled", "policy:require_encryption"})


class Authorizer(Protocol):
    """The switch the gate works (sysfs in production)."""

    def set_authorized(self, sys_path: str, allowed: bool) -> None:
        """Switch a device on or off."""

    def set_default_deny(self, sys_path: str) -> None:
        """Keep new devices behind a controller off by default."""


FactsReader = Callable[[str], DeviceFacts]


class DeviceGate:
    """Owns the state of every present USB device and the decisions about them."""

    def __init__(  # noqa: PLR0913  (the composition root hands each collaborator in)
        self,
        matcher: Matcher,
        authorizer: Authorizer,
        audit: AuditLog,
        store: Store,
        clock: Callable[[], float],
        *,
        read: FactsReader = read_facts,
        media: MediaHooks | None = None,
    ) -> None:
        self._matcher = matcher
        self._authorizer = authorizer
        self._audit = audit
        self._store = store
        self._clock = clock
        self._read = read
        self.media = media
        self.approvals: Callable[[DeviceFacts], ApprovalInForce | None] | None = None
        self._devices: dict[str, DeviceState] = {}
        self.enforce_latency = LatencyWindow()

    # -- events ---------------------------------------------------------------------------

    def start(self, usb_paths: Iterable[str], blocks: Iterable[BlockEvent]) -> None:
        """Judge what is present at start: controllers first, then devices, then volumes."""
        paths = list(usb_paths)
        for path in paths:
            self.usb_added(path, cause="startup")
        self._store.forget_absent(set(self._devices))
        for block in blocks:
            self.block_event(block)

    def usb_event(self, event: UsbEvent) -> None:
        """A kernel uevent for a USB device."""
        if event.action == "add":
            self.usb_added(event.sys_path, cause="plugged", received=event.received)
        elif event.action == "remove":
            self.usb_removed(event.sys_path)

    def usb_added(self, sys_path: str, cause: str, received: float = 0.0) -> DeviceState | None:
        """Judge a USB device and enforce the verdict; controllers are set to default-deny."""
        if is_root_hub(sys_path):
            self._deny_by_default(sys_path)
            return None
        facts = self._read(sys_path)
        state = DeviceState(
            sys_path=sys_path,
            facts=facts,
            kind=classify(facts).kind,
            device_decision=self._decide(facts),
            since=self._clock(),
        )
        self._restore_held_volumes(state)
        self._restore_quarantine(state)
        self._enforce(state)
        if received:
            self.enforce_latency.add(time.perf_counter() - received)
        self._devices[sys_path] = state
        self._record(state, cause)
        return state

    def usb_removed(self, sys_path: str) -> None:
        """A device went away (remove events carry no serial: use what was recorded)."""
        state = self._devices.pop(sys_path, None)
        self._store.remove_device(sys_path)
        if self.media is not None:
            self.media.device_gone(sys_path)
        if state is not None:
            self._audit.append("device.removed", _summary(state))

    def block_event(self, event: BlockEvent) -> None:
        """A disk or partition appeared, changed or went away under some device."""
        if event.action == "remove":
            known = self._known_owner(event.sys_path)
            if known is not None:
                self._volume_removed(known, event.name)
            if self.media is not None:
                self.media.block_elsewhere(event)
            return
        owner = self._owner(event.sys_path)
        if owner is None:
            if self.media is not None:
                self.media.block_elsewhere(event)
            return
        volume = VolumeFacts(
            name=event.name,
            device_id=owner.facts.id,
            fs_type=event.fs_type,
            fs_uuid=event.fs_uuid,
            has_partition_table=event.has_partition_table,
        )
        self._volume_seen(owner, volume)
        decided = owner.volumes.get(volume.name)
        admitted = decided is not None and decided.decision.allowed and owner.decision.allowed
        if self.media is not None and admitted:
            self.media.volume_admitted(owner, volume, event)

    def resync(self, usb_paths: Iterable[str], blocks: Iterable[BlockEvent]) -> None:
        """Events were lost: forget devices that are gone, judge the ones not yet known."""
        present = set(usb_paths)
        for gone in set(self._devices) - present:
            self.usb_removed(gone)
        for path in sorted(present - set(self._devices), key=lambda p: p.count("/")):
            self.usb_added(path, cause="resync")
        for block in blocks:
            self.block_event(block)

    def reload(self, matcher: Matcher) -> int:
        """New rules: judge every present device again; return how many verdicts changed."""
        self._matcher = matcher
        changed = 0
        for state in list(self._devices.values()):
            before = state.decision
            state.device_decision = self._decide(state.facts)
            for volume in state.volumes.values():
                volume.decision = self._decide_volume(state.facts, volume.facts)
            if state.decision != before:
                # A relabelled drive is re-recorded (the label shown changes) but only a new
                # verdict counts as a change.
                changed += state.decision.verdict is not before.verdict
                self._enforce(state)
                self._hold_or_release(state)
                self._record(state, "rules-reloaded")
        return changed

    def quarantine(self, sys_path: str, rule: str, reason: str) -> None:
        """Switch a device off and keep it off until it is unplugged (a virus was found on
        it, or it could not be held read-only for its scan)."""
        state = self._devices.get(sys_path)
        if state is None:
            return
        state.quarantine = Decision(Verdict.BLOCKED, rule, reason, label=state.decision.label)
        self._store.quarantine(sys_path, state.identity, rule, reason)
        self._enforce(state)
        self._record(state, "quarantined")

    # -- queries --------------------------------------------------------------------------

    @property
    def matcher(self) -> Matcher:
        """The rules in force, as a matcher."""
        return self._matcher

    @property
    def policy(self) -> Policy:
        """The policy of the rules in force."""
        return self._matcher.rules.policy

    def devices(self) -> list[DeviceState]:
        """Every present device, in a stable order."""
        return [self._devices[k] for k in sorted(self._devices)]

    def find(self, device_id: str) -> DeviceState | None:
        """A present device by its id (the kernel's name for it, e.g. '2-1')."""
        return next((s for s in self._devices.values() if s.facts.id == device_id), None)

    # -- internals ------------------------------------------------------------------------

    def _decide(self, facts: DeviceFacts) -> Decision:
        """The rules' decision, unless an approval in force lifts a block it may lift."""
        decision = self._matcher.decide_device(facts)
        if decision.allowed or decision.rule not in OVERRIDABLE or self.approvals is None:
            return decision
        approval = self.approvals(facts)
        return decision if approval is None else approval.decision(decision.label)

    def _decide_volume(self, facts: DeviceFacts, volume: VolumeFacts) -> Decision:
        decision = self._matcher.decide_volume(facts, volume)
        approval = self.approvals(facts) if self.approvals is not None else None
        if decision.allowed or approval is None:
            return decision
        encrypted = volume.fs_type in self.policy.encrypted_types or (
            volume.has_partition_table and not volume.fs_type
        )
        if encrypted or approval.document.require_encryption is False:
            return approval.decision(decision.label)
        return Decision(
            Verdict.BLOCKED,
            "policy:require_encryption",
            "blocked: not encrypted (school drives must be encrypted with LUKS or BitLocker)",
        )

    def _deny_by_default(self, sys_path: str) -> None:
        try:
            self._authorizer.set_default_deny(sys_path)
        except OSError as e:
            self._audit.append(
                "controller.default_deny_failed",
                {"controller": os.path.basename(sys_path), "error": str(e.strerror or e)},
            )
            return
        self._audit.append("controller.default_deny", {"controller": os.path.basename(sys_path)})

    def _owner(self, block_path: str) -> DeviceState | None:
        """The USB device a block device sits under (judged now if it was not yet known)."""
        path = usb_ancestor(block_path)
        if path is None:
            return None
        known = self._devices.get(path)
        if known is not None or not os.path.isdir(path):
            return known
        return self.usb_added(path, cause="volume-seen")

    def _known_owner(self, block_path: str) -> DeviceState | None:
        path = usb_ancestor(block_path)
        return None if path is None else self._devices.get(path)

    def _volume_seen(self, owner: DeviceState, volume: VolumeFacts) -> None:
        if owner.device_decision.verdict is Verdict.BLOCKED:
            # The kernel should never have bound it: say it again, fail closed.
            self._switch(owner, allowed=False)
            return
        before = owner.decision
        decision = self._decide_volume(owner.facts, volume)
        owner.volumes[volume.name] = VolumeState(volume, decision)
        self._audit.append("volume.decision", {**_summary(owner), **_volume(volume, decision)})
        if owner.decision != before:
            self._enforce(owner)
            self._hold_or_release(owner)
            self._record(owner, "volume-seen")

    def _volume_removed(self, owner: DeviceState, name: str) -> None:
        volume = owner.volumes.get(name)
        # Keep the facts of a volume that got its device switched off: they are why.
        if volume is not None and volume.decision.verdict is Verdict.ALLOWED:
            del owner.volumes[name]

    def _restore_held_volumes(self, state: DeviceState) -> None:
        if state.device_decision.verdict is not Verdict.ALLOWED:
            return
        for held in self._store.held_volumes(state.sys_path, state.identity):
            volume = VolumeFacts(
                held.name, state.facts.id, held.fs_type, held.fs_uuid, held.has_partition_table
            )
            decision = self._decide_volume(state.facts, volume)
            state.volumes[held.name] = VolumeState(volume, decision)

    def _restore_quarantine(self, state: DeviceState) -> None:
        found = self._store.quarantined(state.sys_path, state.identity)
        if found is not None:
            rule, reason = found
            state.quarantine = Decision(Verdict.BLOCKED, rule, reason)

    def _hold_or_release(self, state: DeviceState) -> None:
        blocked = [
            HeldVolume(v.facts.name, v.facts.fs_type, v.facts.fs_uuid, v.facts.has_partition_table)
            for v in state.volumes.values()
            if v.decision.verdict is Verdict.BLOCKED
        ]
        if blocked:
            self._store.hold_volumes(state.sys_path, state.identity, blocked)
        else:
            self._store.release_volumes(state.sys_path)

    def _enforce(self, state: DeviceState) -> None:
        self._switch(state, allowed=state.decision.verdict is Verdict.ALLOWED)

    def _switch(self, state: DeviceState, allowed: bool) -> None:
        try:
            self._authorizer.set_authorized(state.sys_path, allowed)
        except OSError as e:
            # Unplugged before it could be switched: nothing to enforce, but say so plainly.
            gone = e.errno in (errno.ENOENT, errno.ENODEV)
            self._audit.append(
                "device.vanished" if gone else "device.enforce_failed",
                {**_summary(state), "wanted": allowed, "error": str(e.strerror or e)},
            )

    def _record(self, state: DeviceState, cause: str) -> None:
        view = state.view()
        self._store.put_device(state.sys_path, state.identity, view, self._clock())
        self._audit.append("device.decision", {**_summary(state), "cause": cause})


def usb_ancestor(block_path: str) -> str | None:
    """The sys path of the nearest USB device (e.g. .../usb2/2-1.4) above a block device."""
    parts = block_path.split("/")
    for end in range(len(parts), 0, -1):
        if _USB_DEVICE_NAME.fullmatch(parts[end - 1]):
            return "/".join(parts[:end])
    return None


def _summary(state: DeviceState) -> dict[str, JsonValue]:
    decision = state.decision
    return {
        "device": state.facts.id,
        "serial": state.facts.serial,
        "vendor_id": state.facts.vendor_id,
        "product_id": state.facts.product_id,
        "kind": state.kind.value,
        "verdict": decision.verdict.value,
        "rule": decision.rule,
        "reason": decision.reason,
        "suspicious": decision.suspicious,
    }


def _volume(volume: VolumeFacts, decision: Decision) -> dict[str, JsonValue]:
    return {
        "volume": volume.name,
        "fs_type": volume.fs_type,
        "fs_uuid": volume.fs_uuid,
        "volume_verdict": decision.verdict.value,
        "volume_reason": decision.reason,
    }
