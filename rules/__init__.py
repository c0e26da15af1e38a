"""guardd's rules: which USB drives and cloud-sync folders staff may use, and the pure logic
that decides.

Nothing here touches the system except `load_rules`, which reads the rules files (and the
packaged provider signatures, read once).
"""

from rules.cloud.allow import CloudDefault, CloudRule
from rules.cloud.defaults import default_signatures
from rules.cloud.detect import found_in_folder, found_in_home
from rules.cloud.facts import MAX_CONFIG_TEXT, MAX_FOLDER_ENTRIES, FolderFacts, Found, HomeFacts
from rules.cloud.judge import RULE_DEFAULT, RULE_UNKNOWN_PROVIDER, CloudVerdict, judge_folder
from rules.cloud.providers import MarkerMatch, Provider, Signatures
from rules.cloud.servers import normal_server
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
    "MAX_CONFIG_TEXT",
    "MAX_FOLDER_ENTRIES",
    "MAX_RULES_FILE_BYTES",
    "RULE_DEFAULT",
    "RULE_UNKNOWN_PROVIDER",
    "Classification",
    "CloudDefault",
    "CloudRule",
    "CloudVerdict",
    "Decision",
    "DeviceFacts",
    "DeviceKind",
    "Drive",
    "FolderFacts",
    "Found",
    "HomeFacts",
    "MarkerMatch",
    "Matcher",
    "OnInfected",
    "Policy",
    "Problem",
    "Provider",
    "RuleSet",
    "RulesError",
    "Signatures",
    "UsbInterface",
    "Verdict",
    "VolumeFacts",
    "classify",
    "default_signatures",
    "found_in_folder",
    "found_in_home",
    "is_camera_or_phone",
    "judge_folder",
    "load_rules",
    "normal_server",
    "parse_rules",
]
