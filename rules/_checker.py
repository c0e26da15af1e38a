"""Collect the problems of one rules file, each placed on the line an editor shows.

Shared by the drive, policy, cloud and provider tables (and the packaged providers file),
so every table reports wrong types and unknown keys the same way.
"""

from __future__ import annotations

import difflib
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from rules._locate import KeyPath, LineLocator
from rules._text import show
from rules.errors import Problem

_TOML_POSITION = re.compile(r"\s*\(at line (\d+), column (\d+)\)$")


@dataclass
class Checker:
    """Collects the problems of one file, each placed on its line."""

    source: str
    locator: LineLocator
    problems: list[Problem] = field(default_factory=list)

    def add(self, path: KeyPath, message: str) -> None:
        """Record a problem on the line that defines `path` (or its nearest parent)."""
        self.problems.append(Problem(self.source, self.locator.line_of(path), message))

    def line(self, path: KeyPath) -> int:
        """The line that defines `path`."""
        return self.locator.line_of(path)

    def unknown_keys(self, table: Mapping[str, Any], path: KeyPath, known: tuple[str, ...]) -> None:
        """A problem for every key of `table` not in `known`, with a did-you-mean hint."""
        where = "[policy]" if path == ("policy",) else f"[[{path[0]}]]"
        for key in table:
            if key not in known:
                hint = difflib.get_close_matches(key, known, n=1)
                extra = f"; did you mean '{hint[0]}'?" if hint else ""
                self.add((*path, key), f"unknown key {show(key)} in {where}{extra}")

    def required(self, table: Mapping[str, Any], path: KeyPath, keys: tuple[str, ...]) -> None:
        """A problem for every key of `keys` missing from `table`."""
        for key in keys:
            if key not in table:
                self.add(path, f"{path[0]} is missing required key '{key}'")

    def boolean(self, table: Mapping[str, Any], path: KeyPath, key: str, default: bool) -> bool:
        """The boolean at `key`, or `default` (with a problem when it is not a boolean)."""
        value = table.get(key, default)
        if isinstance(value, bool):
            return value
        self.add((*path, key), f"{key} must be true or false, not {toml_type(value)}")
        return default

    def string(
        self,
        table: Mapping[str, Any],
        path: KeyPath,
        key: str,
        check: Callable[[str], str | None],
    ) -> str | None:
        """The string at `key` if present and `check` accepts it, else None (with a problem)."""
        value = table.get(key)
        if value is None:
            return None
        if not isinstance(value, str):
            self.add((*path, key), f"{key} must be a string, not {toml_type(value)}")
            return None
        message = check(value)
        if message is not None:
            self.add((*path, key), message)
            return None
        return value

    def string_list(
        self,
        table: Mapping[str, Any],
        path: KeyPath,
        key: str,
        check: Callable[[str], str | None],
    ) -> tuple[str, ...] | None:
        """The non-empty array of strings at `key`, in order, else None (with a problem)."""
        value = table.get(key)
        if value is None:
            return None
        if not isinstance(value, list) or not value:
            found = "an empty array" if value == [] else toml_type(value)
            self.add((*path, key), f"{key} must be a non-empty array of strings, not {found}")
            return None
        wrong = [item for item in value if not isinstance(item, str)]
        if wrong:
            found = toml_type(wrong[0])
            self.add((*path, key), f"{key} must be an array of strings, but it holds {_a(found)}")
            return None
        messages = [message for item in value if (message := check(item)) is not None]
        if messages:
            self.add((*path, key), messages[0])
            return None
        return tuple(value)

    def strings(
        self,
        table: Mapping[str, Any],
        path: KeyPath,
        key: str,
        check: Callable[[str], str | None],
    ) -> frozenset[str] | None:
        """Like `string_list`, as a set."""
        values = self.string_list(table, path, key, check)
        return None if values is None else frozenset(values)

    def tables(self, value: object, path: KeyPath, message: str) -> list[dict[str, Any]]:
        """The tables of an array of tables (`[[name]]`), or [] with `message` as a problem."""
        if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
            self.add(path, message)
            return []
        return value


def _a(noun: str) -> str:
    return f"an {noun}" if noun[0] in "aeiou" else f"a {noun}"


def toml_type(value: object) -> str:
    """The TOML name of a decoded value's type, for messages."""
    # bool before int: in Python a bool is an int.
    names: tuple[tuple[type, str], ...] = (
        (bool, "boolean"),
        (int, "integer"),
        (float, "float"),
        (str, "string"),
        (list, "array"),
        (dict, "table"),
    )
    return next((name for kind, name in names if isinstance(value, kind)), "date or time")


def decode_toml(text: str, source: str) -> dict[str, Any] | Problem:
    """Decode a TOML document, or the problem (with its line) that stops it."""
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        message = str(error)
        position = _TOML_POSITION.search(message)
        if position is None:  # "(at end of document)"
            line = text.count("\n") + 1
            message = message.replace(" (at end of document)", " at the end of the file")
        else:
            line = int(position.group(1))
            message = f"{message[: position.start()]} (column {position.group(2)})"
        return Problem(source, line, f"not valid TOML: {message}")
    except RecursionError:
        return Problem(source, 0, "not valid rules: nested too deeply")
