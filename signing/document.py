"""The decision document IT signs: an approval, a denial or a revocation.

A document is a flat JSON object with sorted keys and no whitespace (`canonical`); that exact
byte string is what the detached signature covers. `parse` is strict: unknown fields, wrong
types, unknown versions and kinds, malformed ids and absurd validity windows are refused with a
one-line reason, so a signed document can only mean one thing. Fields that do not apply to a
kind are absent from the JSON (never null) and None in the dataclass.

Fields, by kind (A approval, D denial, R revocation; "-" means must be absent):
    version             A D R   1
    kind                A D R   "approval" | "denial" | "revocation"
    id                  A D R   this decision's id ([a-z0-9][a-z0-9-]{0,63})
    request_id          A D R   the request it answers (for R: the revoked approval's request)
    machine_id          A D R   the machine the request came from
    user, uid           A D R   the member of staff (login name and numeric uid)
    device              A D R   {"serial", "vendor_id", "product_id"} (ids: 4 lowercase hex)
    folder              A D R   {"path", "provider"}: instead of device, in version 2 only
    issued_at           A D R   epoch seconds
    nonce               A D R   32 lowercase hex (16 random bytes)
    approver            A D R   the signer's full primary fingerprint, 40 uppercase hex
    access              A - -   "read-only" | "read-write" (device approvals only)
    require_encryption  A - -   bool (device approvals only)
    not_before          A - -   epoch seconds
    not_after           A - -   epoch seconds, after not_before, at most 366 days later
    reason              a D R   one line (optional note on approvals)
    revokes             - - R   the revoked approval's id

A decision is about one subject: a USB device (version 1, `device`) or a cloud-sync folder
(version 2, `folder`). A reader that knows only version 1 refuses folder decisions rather than
guess, and a folder decision can never be read as one about a device.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from enum import StrEnum
from typing import Any, TypeVar

from rules.model import show, text_problem
from signing.errors import DocumentError

VERSION = 1
FOLDER_VERSION = 2
MAX_PATH_LEN = 4096
MAX_WINDOW_S = 366 * 86400
MAX_REASON_LEN = 500
MAX_USER_LEN = 256
MAX_SERIAL_LEN = 126  # a USB string descriptor holds at most 126 UTF-16 code units
MAX_TIME = 1 << 33  # year 2242: anything later is a typo or an attack
MAX_UID = (1 << 32) - 2  # (uid_t)-1 means "no user"

ID_RE = re.compile(r"[a-z0-9][a-z0-9-]{0,63}")
MACHINE_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
USB_ID_RE = re.compile(r"[0-9a-f]{4}")
NONCE_RE = re.compile(r"[0-9a-f]{32}")
FPR_RE = re.compile(r"[0-9A-F]{40}")
PROVIDER_RE = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")

_E = TypeVar("_E", bound=StrEnum)


class Kind(StrEnum):
    """What a decision says about a request."""

    APPROVAL = "approval"
    DENIAL = "denial"
    REVOCATION = "revocation"


class Access(StrEnum):
    """What an approved device may do."""

    READ_ONLY = "read-only"
    READ_WRITE = "read-write"


@dataclass(frozen=True)
class DeviceRef:
    """The device a decision is about, as its request described it."""

    serial: str
    vendor_id: str
    product_id: str


@dataclass(frozen=True)
class FolderRef:
    """The cloud-sync folder a decision is about, as its request described it."""

    path: str
    provider: str


@dataclass(frozen=True)
class Document:
    """A decision; building one checks every field (a Document is always valid)."""

    kind: Kind
    id: str
    request_id: str
    machine_id: str
    user: str
    uid: int
    issued_at: int
    nonce: str
    approver: str
    device: DeviceRef | None = None
    folder: FolderRef | None = None
    access: Access | None = None
    require_encryption: bool | None = None
    not_before: int | None = None
    not_after: int | None = None
    reason: str | None = None
    revokes: str | None = None
    version: int = field(default=VERSION)

    def __post_init__(self) -> None:
        problem = _problem(self)
        if problem is not None:
            raise DocumentError(problem)

    @property
    def read_only(self) -> bool:
        """True when an approval grants read-only access."""
        return self.access is Access.READ_ONLY


# --- canonical form ------------------------------------------------------------------------


def to_json(doc: Document) -> dict[str, Any]:
    """The document as a JSON object: absent fields left out, enums as their strings."""
    out: dict[str, Any] = {}
    for f in fields(doc):
        value = getattr(doc, f.name)
        if value is None:
            continue
        if isinstance(value, DeviceRef):
            value = {
                "serial": value.serial,
                "vendor_id": value.vendor_id,
                "product_id": value.product_id,
            }
        elif isinstance(value, FolderRef):
            value = {"path": value.path, "provider": value.provider}
        elif isinstance(value, StrEnum):
            value = str(value)
        out[f.name] = value
    return out


def canonical(doc: Document) -> bytes:
    """The exact bytes that are signed: UTF-8 JSON, sorted keys, no whitespace."""
    text = json.dumps(to_json(doc), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return text.encode("utf-8")


# --- parsing -------------------------------------------------------------------------------


def _is_int(value: object) -> bool:
    return type(value) is int  # bool is an int subclass and is not a number here


def _is_str(value: object) -> bool:
    return isinstance(value, str)


def _is_bool(value: object) -> bool:
    return isinstance(value, bool)


def _is_object(value: object) -> bool:
    return isinstance(value, dict)


_TYPES: dict[str, tuple[Callable[[object], bool], str]] = {
    "version": (_is_int, "an integer"),
    "kind": (_is_str, "a string"),
    "id": (_is_str, "a string"),
    "request_id": (_is_str, "a string"),
    "machine_id": (_is_str, "a string"),
    "user": (_is_str, "a string"),
    "uid": (_is_int, "an integer"),
    "device": (_is_object, "an object"),
    "folder": (_is_object, "an object"),
    "issued_at": (_is_int, "an integer"),
    "nonce": (_is_str, "a string"),
    "approver": (_is_str, "a string"),
    "access": (_is_str, "a string"),
    "require_encryption": (_is_bool, "true or false"),
    "not_before": (_is_int, "an integer"),
    "not_after": (_is_int, "an integer"),
    "reason": (_is_str, "a string"),
    "revokes": (_is_str, "a string"),
}
_DEVICE_FIELDS = ("serial", "vendor_id", "product_id")
_FOLDER_FIELDS = ("path", "provider")


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise DocumentError(f"field {key!r} appears twice")
        out[key] = value
    return out


def _no_constants(name: str) -> Any:
    raise DocumentError(f"{name} is not a valid number in a document")


def load_json_object(raw: bytes, what: str) -> dict[str, Any]:
    """A JSON object from UTF-8 bytes: no duplicate keys, no NaN/Infinity, else DocumentError."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise DocumentError(f"{what} is not valid UTF-8") from None
    try:
        value = json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_no_constants)
    except json.JSONDecodeError as e:
        raise DocumentError(f"{what} is not valid JSON ({e.msg} at character {e.pos})") from None
    except RecursionError:
        raise DocumentError(f"{what} is nested too deeply") from None
    except ValueError as e:  # an integer of more than 4300 digits
        raise DocumentError(f"{what} is not usable JSON ({str(e)[:60]})") from None
    if not isinstance(value, dict):
        raise DocumentError(f"{what} is not a JSON object")
    return value


def parse(raw: bytes) -> Document:
    """A Document from its JSON bytes, strictly; DocumentError (one line) if anything is off.

    Canonical form is not required here (verify checks that separately, so the reason is
    precise); every field is.
    """
    obj = load_json_object(raw, "the document")
    version = obj.get("version")
    if not _is_int(version):
        raise DocumentError("the document has no integer 'version'")
    if version not in (VERSION, FOLDER_VERSION):
        raise DocumentError(f"document version {version} is not known (this guardd reads 1, 2)")
    unknown = sorted(set(obj) - set(_TYPES))
    if unknown:
        raise DocumentError(f"unknown field {unknown[0]!r}")
    for name, value in obj.items():
        check, wanted = _TYPES[name]
        if not check(value):
            raise DocumentError(f"field {name!r} must be {wanted}")
    kind = _enum(Kind, obj.get("kind"), "kind")
    access = _enum(Access, obj["access"], "access") if "access" in obj else None
    wanted = "device" if version == VERSION else "folder"
    if wanted not in obj:
        raise DocumentError(f"field {wanted!r} is missing")
    device = _device(obj["device"]) if "device" in obj else None
    folder = _folder(obj["folder"]) if "folder" in obj else None
    missing = [name for name in _COMMON if name not in obj]
    if missing:
        raise DocumentError(f"field {missing[0]!r} is missing")
    return Document(
        kind=kind,
        id=obj["id"],
        request_id=obj["request_id"],
        machine_id=obj["machine_id"],
        user=obj["user"],
        uid=obj["uid"],
        device=device,
        folder=folder,
        issued_at=obj["issued_at"],
        nonce=obj["nonce"],
        approver=obj["approver"],
        access=access,
        require_encryption=obj.get("require_encryption"),
        not_before=obj.get("not_before"),
        not_after=obj.get("not_after"),
        reason=obj.get("reason"),
        revokes=obj.get("revokes"),
        version=version,
    )


_COMMON = (
    "kind",
    "id",
    "request_id",
    "machine_id",
    "user",
    "uid",
    "issued_at",
    "nonce",
    "approver",
)


def _enum(cls: type[_E], value: object, name: str) -> _E:
    if value is None:
        raise DocumentError(f"field {name!r} is missing")
    if not isinstance(value, str):
        raise DocumentError(f"field {name!r} must be a string")
    try:
        return cls(value)
    except ValueError:
        allowed = ", ".join(repr(str(member)) for member in cls)
        raise DocumentError(f"{name} must be one of {allowed} (got {_show(value)})") from None


def _strings(value: object, name: str, names: tuple[str, ...]) -> dict[str, str]:
    assert isinstance(value, dict)  # checked by _TYPES
    unknown = sorted(set(value) - set(names))
    if unknown:
        raise DocumentError(f"unknown field {name}.{unknown[0]}")
    for field_name in names:
        if field_name not in value:
            raise DocumentError(f"field {name}.{field_name} is missing")
        if not isinstance(value[field_name], str):
            raise DocumentError(f"field {name}.{field_name} must be a string")
    return value


def _device(value: object) -> DeviceRef:
    found = _strings(value, "device", _DEVICE_FIELDS)
    return DeviceRef(found["serial"], found["vendor_id"], found["product_id"])


def _folder(value: object) -> FolderRef:
    found = _strings(value, "folder", _FOLDER_FIELDS)
    return FolderRef(found["path"], found["provider"])


# --- field checks --------------------------------------------------------------------------


def _show(value: object) -> str:
    return show(value if isinstance(value, str) else str(value))


def _pattern_problem(name: str, value: str, pattern: re.Pattern[str], form: str) -> str | None:
    if pattern.fullmatch(value):
        return None
    return f"{name} must be {form} (got {_show(value)})"


_ID_FORM = "1 to 64 characters from a-z, 0-9 and '-', not starting with '-'"


def _identity_problem(doc: Document) -> str | None:
    checks = (
        _pattern_problem("id", doc.id, ID_RE, _ID_FORM),
        _pattern_problem("request_id", doc.request_id, ID_RE, _ID_FORM),
        _pattern_problem(
            "machine_id", doc.machine_id, MACHINE_RE, "1 to 64 characters from A-Z, a-z, 0-9, ._-"
        ),
        text_problem("user", doc.user, MAX_USER_LEN),
        None if 0 <= doc.uid <= MAX_UID else f"uid {doc.uid} is out of range",
        _subject_problem(doc),
        _pattern_problem("nonce", doc.nonce, NONCE_RE, "32 lowercase hex digits (16 bytes)"),
        _pattern_problem(
            "approver", doc.approver, FPR_RE, "a full fingerprint, 40 uppercase hex digits"
        ),
        _time_problem("issued_at", doc.issued_at),
    )
    return next((problem for problem in checks if problem is not None), None)


def _subject_problem(doc: Document) -> str | None:
    """Exactly one subject, matching the version: a device (1) or a folder (2)."""
    if (doc.device is None) == (doc.folder is None):
        return "a decision is about exactly one device or one folder"
    if doc.device is not None:
        if doc.version != VERSION:
            return f"a decision about a device is version {VERSION}"
        return _device_problem(doc.device)
    assert doc.folder is not None
    if doc.version != FOLDER_VERSION:
        return f"a decision about a folder is version {FOLDER_VERSION}"
    return _folder_problem(doc.folder)


def _device_problem(device: DeviceRef) -> str | None:
    checks = (
        text_problem("device.serial", device.serial, MAX_SERIAL_LEN),
        _pattern_problem("device.vendor_id", device.vendor_id, USB_ID_RE, "4 lowercase hex"),
        _pattern_problem("device.product_id", device.product_id, USB_ID_RE, "4 lowercase hex"),
    )
    return next((problem for problem in checks if problem is not None), None)


def _folder_problem(folder: FolderRef) -> str | None:
    problem = text_problem("folder.path", folder.path, MAX_PATH_LEN)
    if problem is not None:
        return problem
    if not folder.path.startswith("/") or "/../" in f"{folder.path}/" or "//" in folder.path:
        return f"folder.path must be an absolute, normalised path (got {_show(folder.path)})"
    return _pattern_problem("folder.provider", folder.provider, PROVIDER_RE, "a provider id")


def _time_problem(name: str, value: int) -> str | None:
    if 0 <= value < MAX_TIME:
        return None
    return f"{name} {value} is not a plausible time"


_ONLY = {
    "access": Kind.APPROVAL,
    "require_encryption": Kind.APPROVAL,
    "not_before": Kind.APPROVAL,
    "not_after": Kind.APPROVAL,
    "revokes": Kind.REVOCATION,
}


def _problem(doc: Document) -> str | None:
    """The first thing wrong with a document, or None."""
    if doc.version not in (VERSION, FOLDER_VERSION):
        return f"document version {doc.version} is not known (this guardd reads 1, 2)"
    return _identity_problem(doc) or _fields_problem(doc) or _KIND_CHECKS[doc.kind](doc)


def _fields_problem(doc: Document) -> str | None:
    for name, kind in _ONLY.items():
        if getattr(doc, name) is not None and doc.kind is not kind:
            return f"field {name!r} does not belong in a {doc.kind}"
    if doc.reason is not None:
        return text_problem("reason", doc.reason, MAX_REASON_LEN)
    if doc.kind is not Kind.APPROVAL:
        return f"a {doc.kind} needs a reason"
    return None


def _revocation_problem(doc: Document) -> str | None:
    if doc.revokes is None:
        return "a revocation needs 'revokes' (the approval id)"
    return _pattern_problem("revokes", doc.revokes, ID_RE, _ID_FORM)


def _denial_problem(doc: Document) -> str | None:
    return None


def _approval_problem(doc: Document) -> str | None:
    device_only = ("access", "require_encryption")
    for name in (*device_only, "not_before", "not_after"):
        if doc.folder is not None and name in device_only:
            if getattr(doc, name) is not None:
                return f"field {name!r} does not belong in an approval for a folder"
        elif getattr(doc, name) is None:
            return f"an approval needs {name!r}"
    assert doc.not_before is not None
    assert doc.not_after is not None
    problem = _time_problem("not_before", doc.not_before) or _time_problem(
        "not_after", doc.not_after
    )
    if problem is not None:
        return problem
    if doc.not_after <= doc.not_before:
        return "not_after must be later than not_before"
    if doc.not_after - doc.not_before > MAX_WINDOW_S:
        days = (doc.not_after - doc.not_before) / 86400
        return f"the approval window is {days:.0f} days long; at most 366 are allowed"
    return None


_KIND_CHECKS: dict[Kind, Callable[[Document], str | None]] = {
    Kind.APPROVAL: _approval_problem,
    Kind.DENIAL: _denial_problem,
    Kind.REVOCATION: _revocation_problem,
}


def describe(doc: Document) -> str:
    """A one-line summary for logs and listings."""
    what = f"{doc.kind} {doc.id} for request {doc.request_id}"
    who = f"user {doc.user} on {doc.machine_id}"
    return f"{what}: {who}, {subject(doc)}"


def subject(doc: Document) -> str:
    """What the decision is about, in a few words."""
    if doc.folder is not None:
        return f"{doc.folder.provider} folder {doc.folder.path!r}"
    dev = doc.device
    assert dev is not None  # a Document has exactly one subject
    return f"device {dev.vendor_id}:{dev.product_id} serial {dev.serial!r}"
