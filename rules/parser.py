"""Read rules files (TOML) into a RuleSet, reporting every mistake with its line.

tomllib only gives line numbers for syntax errors, so `LineLocator` (rules._locate) scans the
text once for table headers and `key =` lines; each problem then names the line an editor shows.
The loader is the only code in `rules` that touches the filesystem.
"""

from __future__ import annotations

import difflib
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rules._checker import Checker, decode_toml
from rules._locate import KeyPath, LineLocator
from rules._text import show, text_problem
from rules.cloud.allow import CloudDefault, CloudRule
from rules.cloud.cloud_table import parse_cloud_rules
from rules.cloud.defaults import default_signatures
from rules.cloud.provider_table import parse_providers
from rules.cloud.providers import Provider, Signatures
from rules.errors import Problem, RulesError
from rules.model import (
    DEFAULT_ENCRYPTED_TYPES,
    MAX_LABEL_LEN,
    MAX_SERIAL_LEN,
    Drive,
    OnInfected,
    Policy,
    RuleSet,
    cloud_duplicate_problems,
    default_rule_id,
    duplicate_problems,
    fs_type_problem,
    rule_id_problem,
    usb_id_problem,
    volume_uuid_problem,
)

MAX_RULES_FILE_BYTES = 4 * 1024 * 1024


_POLICY_KEYS = (
    "require_encryption",
    "encrypted_types",
    "allow_non_storage",
    "on_infected",
    "accept_limits_exceeded",
    "cloud_default",
)
_DRIVE_KEYS = ("serial", "vendor_id", "product_id", "label", "volume_uuids", "id")
_REQUIRED_DRIVE_KEYS = ("serial", "vendor_id", "product_id")
_TABLES = ("policy", "drive", "cloud", "provider")
_ONLY_TABLES = "a rules file has only [policy], [[drive]], [[cloud]] and [[provider]]"


# --- checking the document -----------------------------------------------------------------


def _parse_policy(value: object, checker: Checker) -> Policy:
    path: KeyPath = ("policy",)
    if not isinstance(value, dict):
        checker.add(path, "policy must be a single [policy] table")
        return Policy()
    checker.unknown_keys(value, path, _POLICY_KEYS)
    types = checker.strings(value, path, "encrypted_types", fs_type_problem)
    on_infected = checker.string(value, path, "on_infected", _on_infected_problem)
    cloud_default = checker.string(value, path, "cloud_default", _cloud_default_problem)
    return Policy(
        require_encryption=checker.boolean(value, path, "require_encryption", True),
        encrypted_types=types if types is not None else DEFAULT_ENCRYPTED_TYPES,
        allow_non_storage=checker.boolean(value, path, "allow_non_storage", True),
        on_infected=OnInfected(on_infected) if on_infected else OnInfected.BLOCK,
        accept_limits_exceeded=checker.boolean(value, path, "accept_limits_exceeded", False),
        cloud_default=CloudDefault(cloud_default) if cloud_default else CloudDefault.BLOCK,
    )


def _on_infected_problem(value: str) -> str | None:
    choices = [o.value for o in OnInfected]
    if value in choices:
        return None
    return f"on_infected must be one of {', '.join(repr(c) for c in choices)}, not {show(value)}"


def _cloud_default_problem(value: str) -> str | None:
    if value in tuple(CloudDefault):
        return None
    return f"cloud_default must be 'block' or 'allow', not {show(value)}"


def _parse_drives(value: object, checker: Checker) -> list[Drive]:
    message = "drives must be listed as [[drive]] tables, one per drive"
    tables = checker.tables(value, ("drive",), message)
    drives = [_parse_drive(item, index, checker) for index, item in enumerate(tables)]
    return [drive for drive in drives if drive is not None]


def _parse_drive(table: dict[str, Any], index: int, checker: Checker) -> Drive | None:
    path: KeyPath = ("drive", index)
    before = len(checker.problems)
    checker.unknown_keys(table, path, _DRIVE_KEYS)
    checker.required(table, path, _REQUIRED_DRIVE_KEYS)
    serial = checker.string(table, path, "serial", _serial_problem)
    vendor_id = checker.string(table, path, "vendor_id", lambda v: usb_id_problem("vendor_id", v))
    product_id = checker.string(
        table, path, "product_id", lambda v: usb_id_problem("product_id", v)
    )
    label = checker.string(table, path, "label", _label_problem)
    uuids = checker.strings(table, path, "volume_uuids", volume_uuid_problem)
    rule_id = checker.string(table, path, "id", rule_id_problem)
    if len(checker.problems) > before or serial is None or vendor_id is None or product_id is None:
        return None
    vendor_id, product_id = vendor_id.lower(), product_id.lower()
    return Drive(
        rule_id=rule_id or default_rule_id(vendor_id, product_id, serial),
        serial=serial,
        vendor_id=vendor_id,
        product_id=product_id,
        label=label or serial,
        volume_uuids=frozenset(uuid.lower() for uuid in uuids or ()),
        source=checker.source,
        line=checker.locator.line_of(path),
    )


def _serial_problem(value: str) -> str | None:
    return text_problem("serial", value, MAX_SERIAL_LEN)


def _label_problem(value: str) -> str | None:
    return text_problem("label", value, MAX_LABEL_LEN)


# --- files -------------------------------------------------------------------------------


@dataclass(frozen=True)
class _ParsedFile:
    """One file before merging: its policy only if it has [policy], its valid drives, cloud
    rules and providers, and the problems found (a syntax error leaves nothing else to check)."""

    source: str
    policy: Policy | None = None
    policy_line: int = 0
    drives: tuple[Drive, ...] = ()
    problems: tuple[Problem, ...] = ()
    cloud: tuple[tuple[CloudRule, int], ...] = ()  # each with the line of its provider key
    providers: tuple[Provider, ...] = ()


def _parse_file(text: str, source: str) -> _ParsedFile:
    if text.startswith("\ufeff"):  # a byte-order mark, as Windows editors write
        text = text[1:]
    document = decode_toml(text, source)
    if isinstance(document, Problem):
        return _ParsedFile(source, problems=(document,))
    checker = Checker(source, LineLocator(text))
    for key, value in document.items():
        if key in _TABLES:
            continue
        is_table = isinstance(value, dict) or (
            isinstance(value, list) and bool(value) and all(isinstance(v, dict) for v in value)
        )
        name = f"table [{key}]" if is_table else f"key {show(key)}"
        checker.add((key,), f"unknown {name}; {_ONLY_TABLES}")
    policy = _parse_policy(document["policy"], checker) if "policy" in document else None
    drives = _parse_drives(document["drive"], checker) if "drive" in document else []
    cloud = parse_cloud_rules(document["cloud"], checker) if "cloud" in document else []
    providers = parse_providers(document["provider"], checker) if "provider" in document else []
    return _ParsedFile(
        source,
        policy,
        checker.line(("policy",)),
        tuple(drives),
        tuple(checker.problems),
        tuple(cloud),
        tuple(providers),
    )


def parse_rules(text: str, source: str) -> RuleSet:
    """Parse one rules file's text; `source` names it in problems. Raises RulesError."""
    return _merge([_parse_file(text, source)])


def _read_bytes(path: Path) -> bytes | Problem:
    source = str(path)
    try:
        # O_NONBLOCK: opening a FIFO planted in the rules folder must not hang the daemon.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                return Problem(source, 0, "not a regular file")
            # One byte over the limit is enough to know the file is too big.
            data = _read_at_most(fd, MAX_RULES_FILE_BYTES + 1)
        finally:
            os.close(fd)
    except OSError as error:
        return Problem(source, 0, f"cannot read this file: {_reason(error)}")
    if len(data) > MAX_RULES_FILE_BYTES:
        limit = MAX_RULES_FILE_BYTES // (1024 * 1024)
        return Problem(source, 0, f"file is too big (the limit is {limit} MiB)")
    return data


def _read_at_most(fd: int, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while size < limit:
        chunk = os.read(fd, limit - size)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


def _read_text(path: Path) -> str | Problem:
    """Read a rules file as UTF-8 text, or say why it cannot be."""
    data = _read_bytes(path)
    if isinstance(data, Problem):
        return data
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        column = error.start - (data.rfind(b"\n", 0, error.start) + 1) + 1
        message = f"not UTF-8 text: byte 0x{data[error.start]:02x} at column {column}"
        return Problem(str(path), line, message)


def _reason(error: OSError) -> str:
    return error.strerror or type(error).__name__


def _rules_files(folder: Path) -> list[Path]:
    # Hidden files are editor backups and lock files, not rules.
    try:
        names = sorted(os.listdir(folder))
    except OSError as error:
        message = f"cannot list this folder: {_reason(error)}"
        raise RulesError([Problem(str(folder), 0, message)]) from None
    files = [folder / name for name in names if name.endswith(".toml") and not name.startswith(".")]
    if not files:
        raise RulesError([Problem(str(folder), 0, "no rules files (*.toml) in this folder")])
    return files


def _merge(files: list[_ParsedFile]) -> RuleSet:
    """Combine files into one RuleSet, or raise every problem found, in file and line order."""
    problems: list[Problem] = []
    policy: Policy | None = None
    policy_at = ""
    for parsed in files:
        problems.extend(parsed.problems)
        if parsed.policy is None:
            continue
        if policy is not None:
            message = (
                "a second [policy] table: only one rules file may set the policy "
                f"(it is already set at {policy_at})"
            )
            problems.append(Problem(parsed.source, parsed.policy_line, message))
            continue
        policy, policy_at = parsed.policy, f"{parsed.source}:{parsed.policy_line}"
    drives = tuple(drive for parsed in files for drive in parsed.drives)
    problems.extend(duplicate_problems(drives))
    signatures = _signatures(files, problems)
    cloud = tuple(_known_cloud_rules(files, signatures, problems))
    problems.extend(cloud_duplicate_problems(cloud, drives))
    if problems:
        order = {parsed.source: index for index, parsed in enumerate(files)}
        problems.sort(key=lambda problem: (order.get(problem.source, -1), problem.line))
        raise RulesError(problems)
    sources = tuple(parsed.source for parsed in files)
    return RuleSet(policy or Policy(), drives, sources, cloud, signatures)


def _signatures(files: list[_ParsedFile], problems: list[Problem]) -> Signatures:
    """The packaged providers with those of every file (the same id in two files is a
    problem; a packaged id is replaced)."""
    added: dict[str, Provider] = {}
    for parsed in files:
        for provider in parsed.providers:
            first = added.setdefault(provider.provider_id, provider)
            if first is not provider:
                message = (
                    f"duplicate provider id {show(provider.provider_id)}: "
                    f"already defined at {first.source}:{first.line}"
                )
                problems.append(Problem(provider.source, provider.line, message))
    return default_signatures().with_providers(added.values())


def _known_cloud_rules(
    files: list[_ParsedFile], signatures: Signatures, problems: list[Problem]
) -> list[CloudRule]:
    known = sorted(signatures.ids())
    rules: list[CloudRule] = []
    for parsed in files:
        for rule, line in parsed.cloud:
            if rule.provider in known:
                rules.append(rule)
                continue
            hint = difflib.get_close_matches(rule.provider, known, n=1, cutoff=0.8)
            extra = f"did you mean '{hint[0]}'?" if hint else f"known: {', '.join(known)}"
            message = f"unknown provider {show(rule.provider)} in [[cloud]]; {extra}"
            problems.append(Problem(parsed.source, line, message))
    return rules


def load_rules(path: Path) -> RuleSet:
    """Load a rules file, or every `*.toml` file of a folder merged in name order.

    Raises RulesError listing every problem in every file.
    """
    try:
        is_folder = stat.S_ISDIR(path.stat().st_mode)
    except OSError as error:
        message = f"cannot open the rules: {_reason(error)}"
        raise RulesError([Problem(str(path), 0, message)]) from None
    files: list[_ParsedFile] = []
    for file in _rules_files(path) if is_folder else [path]:
        text = _read_text(file)
        if isinstance(text, Problem):
            files.append(_ParsedFile(str(file), problems=(text,)))
        else:
            files.append(_parse_file(text, str(file)))
    return _merge(files)
