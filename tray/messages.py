"""Every word the tray says, as pure functions of its state: kind, plain English that says
what happened, why, and what the person can do."""

from __future__ import annotations

import time
from dataclasses import dataclass
from enum import StrEnum

from tray.state import Status, TrayState, blocked_devices, blocked_folders, status_of
from tray.views import Device, Folder, MyRequest

APP_NAME = "USB guard"

POLICY = (
    "School rules allow only USB drives that the school issued and encrypted, and school "
    "documents must not go through private cloud storage without IT's approval. This shield "
    "checks every drive and sync folder on this computer, blocks what the rules do not allow, "
    "and lets you ask IT for an exception when you need one."
)

COLOURS = {
    Status.OK: "#2e7d32",  # green
    Status.BLOCKED: "#ef6c00",  # orange
    Status.SCANNING: "#1565c0",  # blue
    Status.INFECTED: "#c62828",  # red
    Status.OFFLINE: "#757575",  # grey
}

HEADLINES = {
    Status.OK: "All is well",
    Status.BLOCKED: "Something is blocked",
    Status.SCANNING: "Checking a drive for viruses",
    Status.INFECTED: "A virus was found",
    Status.OFFLINE: "USB guard is not running",
}

EXPIRY_WARNING_S = 15 * 60
ASK_HINT = "If you need it for school work, choose “Request an exception...” in the shield menu."


class Urgency(StrEnum):
    """How insistently a notification is shown."""

    LOW = "low"
    NORMAL = "normal"
    CRITICAL = "critical"


@dataclass(frozen=True)
class Notification:
    """A desktop notification: a short title and a sentence or two."""

    title: str
    body: str
    urgency: Urgency = Urgency.NORMAL


def when(stamp: float | None) -> str:
    """'Tue 24 Nov 17:00' in local time ('an unknown time' when missing)."""
    if stamp is None:
        return "an unknown time"
    return time.strftime("%a %d %b %H:%M", time.localtime(stamp))


def files(n: int) -> str:
    """'1 file', '1,234 files'."""
    return f"{n:,} file" + ("" if n == 1 else "s")


def progress_words(device: Device) -> str:
    """'1,234 of 5,000 files' (or 'counting the files')."""
    if device.progress is None or device.progress[1] == 0:
        return "counting the files"
    done, total = device.progress
    return f"{done:,} of {files(total)}"


_FIXED_WORDS = {"ready": "checked, ready to use", "infected": "virus found, switched off"}
_WITH_REASON = {"scan-failed": "not checked yet", "blocked": "blocked"}


def verdict_words(device: Device) -> str:
    """A device's state in a few words, with its reason where there is one."""
    if device.verdict == "scanning":
        return f"checking for viruses ({progress_words(device)})"
    if device.verdict in _FIXED_WORDS:
        return _FIXED_WORDS[device.verdict]
    if device.verdict in _WITH_REASON:
        words = _WITH_REASON[device.verdict]
        return f"{words}: {device.reason}" if device.reason else words
    if device.verdict == "allowed":
        return f"allowed, {device.reason}" if device.reason else "allowed"
    return device.verdict


def device_line(device: Device) -> str:
    """A device's menu line: its name and state."""
    return f"{device.name}: {verdict_words(device)}"


def folder_line(folder: Folder) -> str:
    """A cloud folder's menu line."""
    name = f"{folder.provider} folder {folder.name}"
    if folder.state == "approved":
        return f"{name}: approved until {when(folder.until)}"
    if folder.state == "blocked":
        return f"{name}: blocked: {folder.reason}" if folder.reason else f"{name}: blocked"
    return f"{name}: allowed"


def standing(request: MyRequest) -> str:
    """Where a request stands, in words."""
    if request.state == "pending":
        return "waiting for IT"
    if request.state == "approved":
        access = ", read-only" if request.read_only else ""
        return f"approved until {when(request.until)}{access}"
    if request.state == "denied":
        return f"denied: {request.detail}" if request.detail else "denied"
    if request.state == "expired":
        return "ended (its time is up)"
    if request.state == "revoked":
        return f"ended by IT: {request.detail}" if request.detail else "ended by IT"
    return request.state


def request_line(request: MyRequest) -> str:
    """A request's menu line."""
    return f"{request.what}: {standing(request)}"


def _first_blocked(state: TrayState) -> str:
    devices, folders = blocked_devices(state), blocked_folders(state)
    if devices:
        first = devices[0]
        line = f"{first.name} is blocked: {first.reason or 'not allowed'}"
    else:
        line = f"{folders[0].provider} folder {folders[0].name} is blocked"
    more = len(devices) + len(folders) - 1
    return line + (f" (and {more} more)" if more else "")


def tooltip(state: TrayState) -> str:
    """The icon's tooltip: the state at a glance."""
    status = status_of(state)
    if status is Status.OFFLINE:
        return (
            f"{APP_NAME} is not running, so drives cannot be checked. New USB drives stay "
            "switched off until it is back."
        )
    if status is Status.INFECTED:
        name = next(d.name for d in state.devices if d.verdict == "infected")
        return f"{APP_NAME}: a virus was found on {name}; it has been switched off."
    if status is Status.SCANNING:
        device = next(d for d in state.devices if d.verdict == "scanning")
        return f"{APP_NAME}: checking {device.name} for viruses ({progress_words(device)})"
    if status is Status.BLOCKED:
        return f"{APP_NAME}: {_first_blocked(state)}"
    return f"{APP_NAME}: all is well"


def device_details(device: Device) -> Notification:
    """What a device's menu line opens: the whole story about it."""
    body = verdict_words(device)
    if device.verdict == "blocked" and device.storage:
        body += ". " + ASK_HINT
    if device.warning:
        body += f" ({device.warning})"
    return Notification(device.name, body[:1].upper() + body[1:], Urgency.LOW)


def folder_details(folder: Folder) -> Notification:
    """What a folder's menu line opens."""
    body = folder_line(folder)
    if folder.state == "blocked":
        body += ". Your files are still there, untouched. " + ASK_HINT
    return Notification(f"{folder.provider} folder", f"{folder.path}: {body}", Urgency.LOW)


def request_sent(what: str) -> Notification:
    """After a request went to IT."""
    return Notification(
        "Request sent to IT",
        f"Your request for {what} was sent. You will get a message here when IT answer; "
        "“My requests” in the shield menu shows where it stands.",
    )


def request_failed(what: str, why: str) -> Notification:
    """When a request could not be sent."""
    return Notification(
        "Request not sent",
        f"Your request for {what} could not be sent: {why}. Please try again, or ask IT.",
        Urgency.NORMAL,
    )
