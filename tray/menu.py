"""The tray's menu as plain data, built from the state by a pure function; the icon adapter
turns it into a real menu and hands chosen actions back to the app."""

from __future__ import annotations

from dataclasses import dataclass

from tray import messages
from tray.messages import HEADLINES, Notification
from tray.state import Status, TrayState, blocked_devices, blocked_folders, status_of

REQUEST_LABEL = "Request an exception..."
POLICY_LABEL = "What is this?"
MY_REQUESTS_LABEL = "My requests"
MAX_LABEL = 110


@dataclass(frozen=True)
class Target:
    """Something blocked that the person can ask IT about."""

    kind: str  # "device" or "folder"
    key: str  # the device's id, or the folder's path
    name: str  # for people


@dataclass(frozen=True)
class RequestException:
    """Open the exception dialog for `target`."""

    target: Target


@dataclass(frozen=True)
class ShowPolicy:
    """Explain the school's policy."""


@dataclass(frozen=True)
class ShowDetails:
    """Show the whole story about one line of the menu."""

    notification: Notification


Action = RequestException | ShowPolicy | ShowDetails


@dataclass(frozen=True)
class Entry:
    """A menu line: text, and what choosing it does (None: it only informs), or a submenu."""

    label: str
    action: Action | None = None
    children: tuple[Entry, ...] = ()

    @property
    def enabled(self) -> bool:
        """Whether the line can be chosen (an action or a submenu)."""
        return self.action is not None or bool(self.children)


SEPARATOR = Entry("-")


def _label(text: str) -> str:
    return text if len(text) <= MAX_LABEL else text[: MAX_LABEL - 1] + "…"


def targets(state: TrayState) -> tuple[Target, ...]:
    """Everything blocked that an exception could be asked for."""
    devices = [
        Target("device", d.id, d.name)
        for d in blocked_devices(state)
        if d.storage and d.verdict == "blocked"  # a drive waiting for its scan needs no exception
    ]
    folders = [
        Target("folder", f.path, f"{f.provider} folder {f.name}") for f in blocked_folders(state)
    ]
    return tuple(devices + folders)


def _devices(state: TrayState) -> list[Entry]:
    if not state.devices:
        return [Entry("No USB devices are connected")]
    return [
        Entry(_label(messages.device_line(d)), ShowDetails(messages.device_details(d)))
        for d in state.devices
    ]


def _folders(state: TrayState) -> list[Entry]:
    if state.folders is None:
        return []  # this guardd does not look after cloud folders
    entries = [Entry("Cloud folders:")]
    if not state.folders:
        return [*entries, Entry("No cloud sync folders were found")]
    return entries + [
        Entry(_label(messages.folder_line(f)), ShowDetails(messages.folder_details(f)))
        for f in state.folders
    ]


def _request_entry(state: TrayState) -> Entry:
    found = targets(state)
    if not found:
        return Entry(f"{REQUEST_LABEL} (nothing is blocked)")
    if len(found) == 1:
        return Entry(REQUEST_LABEL, RequestException(found[0]))
    return Entry(
        REQUEST_LABEL, children=tuple(Entry(_label(t.name), RequestException(t)) for t in found)
    )


def _my_requests(state: TrayState) -> Entry:
    if not state.requests:
        return Entry(MY_REQUESTS_LABEL, children=(Entry("You have not asked for any exception"),))
    lines = tuple(Entry(_label(messages.request_line(r))) for r in state.requests)
    return Entry(MY_REQUESTS_LABEL, children=lines)


def build_menu(state: TrayState) -> tuple[Entry, ...]:
    """The whole menu for a state."""
    status = status_of(state)
    head = Entry(HEADLINES[status])
    if status is Status.OFFLINE:
        return (
            head,
            Entry("New USB drives stay switched off until it is back"),
            SEPARATOR,
            Entry(POLICY_LABEL, ShowPolicy()),
        )
    return (
        head,
        SEPARATOR,
        Entry("USB devices connected now:"),
        *_devices(state),
        SEPARATOR,
        *_folders(state),
        *([SEPARATOR] if state.folders is not None else []),
        _request_entry(state),
        _my_requests(state),
        SEPARATOR,
        Entry(POLICY_LABEL, ShowPolicy()),
    )
