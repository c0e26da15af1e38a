"""The gate's view of one present device: its facts, its decision and its volumes."""

from __future__ import annotations

from dataclasses import dataclass, field

from rules.device import DeviceFacts, DeviceKind, VolumeFacts
from rules.matcher import Decision, Verdict

RULE_INFECTED = "scan:infected"


@dataclass
class VolumeState:
    """A block device under a USB device, with the decision about it."""

    facts: VolumeFacts
    decision: Decision


@dataclass
class DeviceState:
    """A present USB device; mutable, owned by the gate."""

    sys_path: str
    facts: DeviceFacts
    kind: DeviceKind
    device_decision: Decision
    since: float
    volumes: dict[str, VolumeState] = field(default_factory=dict)
    quarantine: Decision | None = None  # set when a virus was found: overrides everything

    @property
    def decision(self) -> Decision:
        """The effective decision: quarantine first, the device's, then its volumes'."""
        if self.quarantine is not None:
            return self.quarantine
        if self.device_decision.verdict is Verdict.BLOCKED:
            return self.device_decision
        for volume in self.volumes.values():
            if volume.decision.verdict is Verdict.BLOCKED:
                return volume.decision
        return self.device_decision

    @property
    def identity(self) -> str:
        """Vendor, product and serial: the same stick, as far as it says (self-reported)."""
        return f"{self.facts.vendor_id}:{self.facts.product_id}:{self.facts.serial!r}"

    def view(self) -> dict[str, object]:
        """The JSON shape the CLIs and the tray show (the protocol's `devices` item)."""
        decision = self.decision
        return {
            "id": self.facts.id,
            "sys_path": self.sys_path,
            "serial": self.facts.serial,
            "vendor_id": self.facts.vendor_id,
            "product_id": self.facts.product_id,
            "manufacturer": self.facts.manufacturer,
            "product": self.facts.product,
            "kind": self.kind.value,
            "verdict": "infected" if decision.rule == RULE_INFECTED else decision.verdict.value,
            "reason": decision.reason,
            "rule": decision.rule,
            "label": decision.label,
            "suspicious": decision.suspicious,
            "since": self.since,
            "volumes": [
                {
                    "name": v.facts.name,
                    "fs_type": v.facts.fs_type,
                    "verdict": v.decision.verdict.value,
                    "reason": v.decision.reason,
                }
                for v in self.volumes.values()
            ],
        }
