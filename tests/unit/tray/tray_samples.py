"""Plain data shaped like guardd's answers, for the tray's unit tests (no tests here)."""

from __future__ import annotations

from typing import Any

from tray.state import TrayState
from tray.views import devices_from, folders_from, requests_from


def device(
    id_: str = "2-1", verdict: str = "blocked", kind: str = "storage", **extra: Any
) -> dict[str, Any]:
    reasons = {
        "blocked": "blocked: this drive was not issued by the school",
        "allowed": "allowed: keyboard or mouse (not a storage device)",
        "ready": "ready: no virus found",
        "scanning": "scanning: counting the files",
        "infected": "blocked: a virus was found on this drive",
        "scan-failed": "cannot scan right now: clamd is not running",
    }
    return {
        "id": id_,
        "serial": "CLERK-1",
        "manufacturer": "SanDisk",
        "product": "Cruzer Blade",
        "kind": kind,
        "verdict": verdict,
        "reason": reasons.get(verdict, ""),
        **extra,
    }


def folder(
    path: str = "/home/clerk/Dropbox", state: str = "blocked", **extra: Any
) -> dict[str, Any]:
    return {
        "path": path,
        "provider": "dropbox",  # guardd: the id; `name` is for people
        "name": "Dropbox",
        "state": state,
        "reason": "personal cloud storage is not allowed on school machines",
        "rule": "cloud:dropbox",
        "until": None,
        "owner_uid": 1000,
        **extra,
    }


def request(id_: str = "req-1", state: str = "pending", **extra: Any) -> dict[str, Any]:
    return {
        "id": id_,
        "user": "clerk",
        "uid": 1000,
        "device": {"id": "2-1", "serial": "CLERK-1", "product": "Cruzer Blade"},
        "reason": "governors' papers",
        "duration_s": 86400,
        "read_only": False,
        "created": 1_700_000_000,
        "state": state,
        "detail": "",
        "until": None,
        **extra,
    }


def state(
    devices: list[dict[str, Any]] | None = None,
    folders: list[dict[str, Any]] | None = None,
    requests: list[dict[str, Any]] | None = None,
) -> TrayState:
    return TrayState(
        connected=True,
        devices=devices_from(devices or []),
        folders=None if folders is None else folders_from(folders),
        requests=requests_from(requests or []),
    )
