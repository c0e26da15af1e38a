"""guardd's rules: which USB drives staff may use, and the pure logic that decides.

Nothing here touches the system except `load_rules`, which reads the rules files.
"""

from rules.device import (
    Classification,
    DeviceFacts,
    DeviceKind,
    UsbInterface,
    VolumeFacts,
    classify,
    is_camera_or_phone,
)
from rules.errors import Problem, RulesError
from rules.matcher import Decision, Matcher, Verdict
from rules.model import Drive, OnInfected, Policy, RuleSet
from rules.parser import MAX_RULES_FILE_BYTES, load_rules, parse_rules

__all__ = [
    "MAX_RULES_FILE_BYTES",
    "Classification",
    "Decision",
    "DeviceFacts",
    "DeviceKind",
    "Drive",
    "Matcher",
    "OnInfected",
    "Policy",
    "Problem",
    "RuleSet",
    "RulesError",
    "UsbInterface",
    "Verdict",
    "VolumeFacts",
    "classify",
    "is_camera_or_phone",
    "load_rules",
    "parse_rules",
]
