"""What guardd tells the tray, read without trusting it: plain frozen records.

Everything here comes off the socket. Strings are cut to a length and stripped of control
characters (a device chooses its own name), numbers must really be numbers, and an entry of
the wrong shape is left out rather than shown half-read.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass
from typing import Any

from guardd.cli.common import KIND_WORDS

MAX_ITEMS = 64  # a menu longer than this helps nobody; the rest is left out


def text(value: object, limit: int = 80) -> str:
    """A one-line printable string of at most `limit` characters ('' for non-strings)."""
    if not isinstance(value, str):
        return ""
    flat = " ".join("".join(c if c.isprintable() else " " for c in value).split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def number(value: object) -> float | None:
    """A real number (not a bool), or None."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _count(value: object) -> int | None:
    return value if type(value) is int and value >= 0 else None


@dataclass(frozen=True)
class Device:
    """A USB device as guardd judged it."""

    id: str
    name: str
    kind: str
    verdict: str  # allowed, blocked, scanning, ready, infected, scan-failed
    reason: str
    progress: tuple[int, int] | None = None  # files done, files in all
    warning: str = ""
    infected_files: int = 0

    @property
    def storage(self) -> bool:
        """Whether this device can carry files (a drive, a camera, a phone)."""
        return self.kind in ("storage", "composite")


@dataclass(frozen=True)
class Folder:
    """A cloud-sync folder guardd found, and its state."""

    path: str
    provider: str
    name: str
    state: str  # blocked, allowed, approved
    reason: str
    until: float | None = None


@dataclass(frozen=True)
class MyRequest:
    """One of the person's exception requests."""

    id: str
    what: str  # the device's or folder's name, for people
    state: str  # pending, approved, denied, expired, revoked
    detail: str
    until: float | None
    read_only: bool


VERDICT_PREFIXES = ("allowed: ", "blocked: ")


def bare_reason(reason: str, verdict: str) -> str:
    """The reason without the verdict guardd's text starts with ("blocked: not issued..."),
    since the tray says the verdict itself."""
    for prefix in (*VERDICT_PREFIXES, f"{verdict}: "):
        if reason.lower().startswith(prefix):
            return reason[len(prefix) :]
    return reason


def _device_name(d: dict[str, Any]) -> str:
    label = text(d.get("label"), 40)
    if label:
        return label
    made = " ".join(x for x in (text(d.get("manufacturer"), 30), text(d.get("product"), 40)) if x)
    return made or KIND_WORDS.get(text(d.get("kind")), "USB device")


def _progress(value: object) -> tuple[int, int] | None:
    if not isinstance(value, dict):
        return None
    done, total = _count(value.get("files_done")), _count(value.get("files_total"))
    return None if done is None or total is None else (done, total)


def _infected(scan: object) -> int:
    if not isinstance(scan, dict) or not isinstance(scan.get("infected"), list):
        return 0
    return len(scan["infected"])


def device_from(d: object) -> Device | None:
    """One device entry of `devices`, or None when it is not shaped like one."""
    if not isinstance(d, dict) or not text(d.get("id")) or not text(d.get("verdict")):
        return None
    verdict = text(d.get("verdict"), 16)
    return Device(
        id=text(d.get("id"), 32),
        name=_device_name(d),
        kind=text(d.get("kind"), 16),
        verdict=verdict,
        reason=bare_reason(text(d.get("reason"), 200), verdict),
        progress=_progress(d.get("progress")),
        warning=text(d.get("warning"), 200),
        infected_files=_infected(d.get("scan")),
    )


def folder_from(f: object) -> Folder | None:
    """One entry of `cloud`, or None when it is not shaped like one."""
    if not isinstance(f, dict) or not text(f.get("path"), 4096) or not text(f.get("state")):
        return None
    # guardd's `name` is the provider's name for people ("Dropbox"), `provider` its id.
    provider = text(f.get("name"), 40) or text(f.get("provider"), 40) or "cloud"
    path = text(f.get("path"), 4096)
    return Folder(
        path=path,
        provider=provider,
        name=text(posixpath.basename(path.rstrip("/")), 60) or path[:60],
        state=text(f.get("state"), 16),
        reason=text(f.get("reason"), 200),
        until=number(f.get("until")),
    )


def _request_what(r: dict[str, Any]) -> str:
    raw = r.get("folder")
    folder = text(raw.get("path") if isinstance(raw, dict) else raw, 200)
    if folder:
        return f"folder {folder}"
    device = r.get("device")
    if isinstance(device, dict):
        name = _device_name(device)
        serial = text(device.get("serial"), 40)
        return f"{name} (serial {serial})" if serial else name
    return "a device"


def request_from(r: object) -> MyRequest | None:
    """One entry of `requests`, or None when it is not shaped like one."""
    if not isinstance(r, dict) or not text(r.get("id")) or not text(r.get("state")):
        return None
    return MyRequest(
        id=text(r.get("id"), 64),
        what=_request_what(r),
        state=text(r.get("state"), 16),
        detail=text(r.get("detail"), 200),
        until=number(r.get("until")),
        read_only=r.get("read_only") is True,
    )


def devices_from(result: object) -> tuple[Device, ...]:
    """The `devices` answer (entries of the wrong shape left out)."""
    items = result if isinstance(result, list) else []
    return tuple(d for d in map(device_from, items[:MAX_ITEMS]) if d is not None)


def folders_from(result: object) -> tuple[Folder, ...]:
    """The `cloud` answer (entries of the wrong shape left out)."""
    items = result if isinstance(result, list) else []
    return tuple(f for f in map(folder_from, items[:MAX_ITEMS]) if f is not None)


def requests_from(result: object) -> tuple[MyRequest, ...]:
    """The `requests` answer, newest first (entries of the wrong shape left out)."""
    items = result if isinstance(result, list) else []
    found = [r for r in map(request_from, items[-MAX_ITEMS:]) if r is not None]
    return tuple(reversed(found))
