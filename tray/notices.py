"""Which desktop notifications a change of state calls for: a pure function of the state
before and the state after (so a burst of events, or a reconnect, never repeats one)."""

from __future__ import annotations

from tray.messages import ASK_HINT, Notification, Urgency, files, when
from tray.state import TrayState
from tray.views import Device, Folder, MyRequest


def _device_notice(old: Device | None, new: Device) -> Notification | None:
    before = old.verdict if old is not None else None
    if new.verdict == before:
        return _warning_notice(old, new)
    if new.verdict == "blocked":
        hint = f" {ASK_HINT}" if new.storage else " Please ask IT if you think this is wrong."
        return Notification(
            f"{new.name} blocked", f"{new.name} cannot be used: {new.reason}.{hint}"
        )
    if new.verdict == "ready":
        return Notification(
            "Drive checked: no viruses", f"{new.name} was checked and is ready to use.", Urgency.LOW
        )
    if new.verdict == "infected":
        found = f" ({files(new.infected_files)})" if new.infected_files else ""
        return Notification(
            "Virus found: drive switched off",
            f"A virus was found on {new.name}{found}. The drive was switched off so it cannot "
            "spread; nothing on it was deleted. IT have been told: please hand the drive to IT "
            "and do not plug it in again.",
            Urgency.CRITICAL,
        )
    if new.verdict == "scan-failed":
        return Notification(
            f"{new.name} not checked yet",
            f"{new.name} could not be checked for viruses yet: {new.reason}. It stays "
            "read-only, and USB guard tries again by itself.",
        )
    return _warning_notice(old, new)


def _warning_notice(old: Device | None, new: Device) -> Notification | None:
    if not new.warning or (old is not None and old.warning):
        return None
    return Notification("Your exception ends soon", f"{new.name}: {new.warning}.", Urgency.CRITICAL)


def _request_notice(old: MyRequest, new: MyRequest) -> Notification | None:
    if old.state == new.state:
        return None
    if new.state == "approved":
        access = " to read files only" if new.read_only else ""
        return Notification(
            "Request approved",
            f"IT approved your request for {new.what}{access} until {when(new.until)}. "
            "You can use it now.",
        )
    if new.state == "denied":
        why = f": {new.detail}" if new.detail else ""
        return Notification(
            "Request denied",
            f"IT did not approve your request for {new.what}{why}. Ask IT if you have questions.",
        )
    if new.state == "expired":
        return Notification(
            "Exception ended",
            f"The exception for {new.what} has ended, so it is blocked again. You can ask for a "
            "new one from the shield menu.",
        )
    if new.state == "revoked":
        why = f": {new.detail}" if new.detail else ""
        return Notification("Exception ended by IT", f"IT ended the exception for {new.what}{why}.")
    return None


def _folder_notice(old: Folder | None, new: Folder) -> Notification | None:
    if new.state != "blocked" or (old is not None and old.state == "blocked"):
        return None
    why = f": {new.reason}" if new.reason else ""
    return Notification(
        f"{new.provider} folder blocked",
        f"{new.path} was blocked{why}. Your files are still there, untouched. {ASK_HINT}",
    )


def notices(old: TrayState | None, new: TrayState) -> list[Notification]:
    """What to tell the person about the change from `old` to `new` (both connected states;
    nothing on the first state seen, which is not news)."""
    if old is None or not old.connected or not new.connected:
        return []
    found: list[Notification | None] = []
    before_devices = {d.id: d for d in old.devices}
    found += [_device_notice(before_devices.get(d.id), d) for d in new.devices]
    before_requests = {r.id: r for r in old.requests}
    found += [
        _request_notice(before_requests[r.id], r) for r in new.requests if r.id in before_requests
    ]
    before_folders = {f.path: f for f in old.folders or ()}
    found += [_folder_notice(before_folders.get(f.path), f) for f in new.folders or ()]
    return [n for n in found if n is not None]
