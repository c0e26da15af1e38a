"""The exception dialog (GTK): why, for how long, read-only or not. It only collects the
answers; the app sends the request."""

from __future__ import annotations

from collections.abc import Callable

import gi

gi.require_version("Gtk", "3.0")
from gi.repository import Gtk  # noqa: E402 - gi needs its version set first

from guardd.exceptions.requests import MAX_REASON_CHARS  # noqa: E402
from tray.form import DEFAULT_DURATION, DURATIONS, ExceptionForm, reason_problem  # noqa: E402
from tray.menu import Target  # noqa: E402

TITLE = "Request an exception"


def _intro(target: Target) -> str:
    what = "folder" if target.kind == "folder" else "device"
    return (
        f"Ask IT to let you use the {what} “{target.name}”. IT will read your reason and "
        "answer; you will see their answer here."
    )


class ExceptionDialog:
    """A small dialog; `on_done` gets the form, or None when the person cancels."""

    def __init__(self, target: Target, on_done: Callable[[ExceptionForm | None], None]) -> None:
        self._on_done = on_done
        self.window = Gtk.Dialog(title=TITLE)
        self.window.set_default_size(440, -1)
        self.window.set_keep_above(True)
        self.window.set_position(Gtk.WindowPosition.CENTER)
        self.window.add_button("_Cancel", Gtk.ResponseType.CANCEL)
        self._send = self.window.add_button("_Send request", Gtk.ResponseType.OK)
        self.window.set_default_response(Gtk.ResponseType.OK)
        box = self.window.get_content_area()
        box.set_spacing(8)
        box.set_border_width(12)
        intro = Gtk.Label(label=_intro(target), xalign=0)
        intro.set_line_wrap(True)
        box.add(intro)
        box.add(Gtk.Label(label="Why do you need it?", xalign=0))
        self._reason = Gtk.Entry()
        self._reason.set_max_length(MAX_REASON_CHARS)
        self._reason.set_activates_default(True)
        self._reason.set_placeholder_text("for example: governors' papers from the clerk")
        self._reason.connect("changed", self._changed)
        box.add(self._reason)
        self._hint = Gtk.Label(label="", xalign=0)
        box.add(self._hint)
        box.add(Gtk.Label(label="For how long?", xalign=0))
        self._duration = Gtk.ComboBoxText()
        for words, value in DURATIONS:
            self._duration.append(value, words)
        self._duration.set_active_id(DEFAULT_DURATION)
        box.add(self._duration)
        self._read_only = Gtk.CheckButton.new_with_mnemonic(
            "Only to _read files from it (read-only)"
        )
        box.add(self._read_only)
        self.window.connect("response", self._response)
        self.window.show_all()
        self._changed(self._reason)
        self.window.present()

    def _changed(self, entry: Gtk.Entry) -> None:
        problem = reason_problem(entry.get_text())
        self._send.set_sensitive(problem is None)
        self._hint.set_text(problem or "")
        self._hint.set_visible(bool(problem and entry.get_text()))  # no scolding before typing

    def _response(self, dialog: Gtk.Dialog, response: int) -> None:
        form = None
        if response == Gtk.ResponseType.OK and reason_problem(self._reason.get_text()) is None:
            form = ExceptionForm(
                reason=self._reason.get_text(),
                duration=self._duration.get_active_id() or DEFAULT_DURATION,
                read_only=self._read_only.get_active(),
            )
        elif response == Gtk.ResponseType.OK:
            return  # Enter with no reason yet: keep the dialog open
        self.window.destroy()
        self._on_done(form)


def show_message(title: str, text: str) -> None:
    """A plain information window (for “What is this?”)."""
    message = Gtk.MessageDialog(
        message_type=Gtk.MessageType.INFO, buttons=Gtk.ButtonsType.CLOSE, text=title
    )
    message.set_title(title)
    message.format_secondary_text(text)
    message.set_keep_above(True)
    message.set_position(Gtk.WindowPosition.CENTER)
    message.connect("response", lambda m, _r: m.destroy())
    message.show_all()
    message.present()
