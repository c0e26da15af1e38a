"""Run every sample device in tests/samples/devices/cases_*.toml through the Matcher.

A cases file may name its rules file (`rules = "rules_strict.toml"`; default "rules.toml")
and holds `[[case]]` tables:

    name           what the case shows (the test id)
    serial         the device's serial; leave it out when the device reports none
    serial_repeat  optional: the serial is `serial` repeated this many times
    vendor_id, product_id
    device_class   bDeviceClass, default 0 ("look at the interfaces")
    interfaces     ["080650", ...]: class, subclass, protocol in hex as in udev's
                   ID_USB_INTERFACES; "unreadable" when the descriptors could not be read
    expect         "allowed" or "blocked": the device's verdict
    rule, reason, reason_contains, label, suspicious (default false): checked when given

and, under a case, `[[case.volume]]` tables for the block devices that appear on it:
name, fs_type, fs_uuid (default ""), partition_table (default false), and the same
expect/rule/reason/reason_contains/label checks for decide_volume.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest

from rules import Decision, DeviceFacts, Matcher, UsbInterface, VolumeFacts, load_rules

SAMPLES = Path(__file__).parent / "devices"
_CHECKS = {"expect", "rule", "reason", "reason_contains", "label"}
_CASE_KEYS = _CHECKS | {
    "name",
    "serial",
    "serial_repeat",
    "vendor_id",
    "product_id",
    "device_class",
    "interfaces",
    "suspicious",
    "volume",
}
_VOLUME_KEYS = _CHECKS | {"name", "fs_type", "fs_uuid", "partition_table"}


def _load_cases() -> list[Any]:
    params = []
    for path in sorted(SAMPLES.glob("cases_*.toml")):
        data = tomllib.loads(path.read_text(encoding="utf-8"))
        rules_file = data.get("rules", "rules.toml")
        for case in data["case"]:
            params.append(pytest.param(rules_file, case, id=f"{path.stem}: {case['name']}"))
    return params


_MATCHERS: dict[str, Matcher] = {}


def _matcher(rules_file: str) -> Matcher:
    if rules_file not in _MATCHERS:
        _MATCHERS[rules_file] = Matcher(load_rules(SAMPLES / rules_file))
    return _MATCHERS[rules_file]


def _interfaces(value: str | list[str]) -> tuple[UsbInterface, ...] | None:
    if value == "unreadable":
        return None
    assert isinstance(value, list), "interfaces must be a list or 'unreadable'"
    return tuple(UsbInterface(int(i[0:2], 16), int(i[2:4], 16), int(i[4:6], 16)) for i in value)


def _facts(case: dict[str, Any]) -> DeviceFacts:
    serial = case.get("serial")
    if serial is not None:
        serial *= case.get("serial_repeat", 1)
    return DeviceFacts(
        id="1-2",
        vendor_id=case["vendor_id"],
        product_id=case["product_id"],
        serial=serial,
        device_class=case.get("device_class", 0),
        interfaces=_interfaces(case["interfaces"]),
    )


def _volume(spec: dict[str, Any]) -> VolumeFacts:
    return VolumeFacts(
        name=spec["name"],
        device_id="1-2",
        fs_type=spec["fs_type"],
        fs_uuid=spec.get("fs_uuid", ""),
        has_partition_table=spec.get("partition_table", False),
    )


def _check(decision: Decision, spec: dict[str, Any], what: str) -> None:
    assert decision.verdict == spec["expect"], f"{what}: {decision}"
    for key in ("rule", "reason", "label"):
        if key in spec:
            assert getattr(decision, key) == spec[key], f"{what}: {key} of {decision}"
    if "reason_contains" in spec:
        assert spec["reason_contains"] in decision.reason, f"{what}: reason of {decision}"


@pytest.mark.parametrize(("rules_file", "case"), _load_cases())
def test_device_sample(rules_file: str, case: dict[str, Any]) -> None:
    assert set(case) <= _CASE_KEYS, f"unknown keys: {set(case) - _CASE_KEYS}"
    matcher = _matcher(rules_file)
    facts = _facts(case)
    decision = matcher.decide_device(facts)
    _check(decision, case, "device")
    assert decision.suspicious is case.get("suspicious", False)
    for spec in case.get("volume", []):
        assert set(spec) <= _VOLUME_KEYS, f"unknown keys: {set(spec) - _VOLUME_KEYS}"
        _check(matcher.decide_volume(facts, _volume(spec)), spec, f"volume {spec['name']}")


def test_case_names_are_unique() -> None:
    names = [param.id for param in _load_cases()]
    assert len(names) == len(set(names))
