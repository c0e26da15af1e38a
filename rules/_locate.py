"""Find the line that defines a key in a TOML document tomllib already accepted.

tomllib reports lines only for syntax errors; the rules parser uses this to put every
semantic problem on the line an editor shows.
"""

from __future__ import annotations

import re
import tomllib
from typing import TypeAlias

KeyPath: TypeAlias = tuple[str | int, ...]

_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
_SIMPLE_KEY_LINE = re.compile(r"[ \t]*([A-Za-z0-9_-]+)[ \t]*=")
_VALUE_STOP = re.compile(r"""["'#\[\]{}]""")
# The rest of a basic string, and of a multi-line basic string, up to the closing quotes.
_BASIC_END = re.compile(r'(?:[^"\\]|\\.)*"')
_ML_BASIC_END = re.compile(r'(?:[^"\\]|\\.|"(?!""))*"""')


class LineLocator:
    """Map key paths like ("drive", 2, "serial") to the 1-based line that defines them.

    It runs only on text tomllib accepted, so it can be simple: it tracks multi-line strings
    and open brackets (so their contents are never mistaken for headers or keys) and counts
    `[[array]]` entries to give each one its index.
    """

    def __init__(self, text: str) -> None:
        self._lines: dict[KeyPath, int] = {}
        self._aot_index: dict[KeyPath, int] = {}
        self._table: KeyPath = ()
        self._depth = 0
        self._closing: str | None = None  # delimiter of the multi-line string we are inside
        # TOML counts lines by "\n" only; str.splitlines() would also split on \x0c, \u2028...
        for number, line in enumerate(text.split("\n"), 1):
            self._feed(line, number)

    def line_of(self, path: KeyPath) -> int:
        """The line defining `path`, else its nearest recorded parent; 0 when none is."""
        for end in range(len(path), 0, -1):
            line = self._lines.get(path[:end])
            if line is not None:
                return line
        return 0

    def _record(self, path: KeyPath, number: int) -> None:
        for end in range(1, len(path) + 1):
            self._lines.setdefault(path[:end], number)

    def _feed(self, line: str, number: int) -> None:
        if self._closing is not None or self._depth > 0:
            self._scan_value(line, 0)
            return
        simple = _SIMPLE_KEY_LINE.match(line)  # most lines: `key = value`
        if simple:
            # The table's own path was recorded at its header: only the key is new.
            self._lines.setdefault((*self._table, simple.group(1)), number)
            self._scan_value(line, simple.end())
            return
        start = len(line) - len(line.lstrip())
        if start == len(line) or line[start] == "#":
            return
        if line[start] == "[":
            self._header(line, start, number)
            return
        keys, end = _read_key(line, start)
        if keys and end < len(line) and line[end] == "=":
            self._record(self._table + keys, number)
            self._scan_value(line, end + 1)

    def _header(self, line: str, start: int, number: int) -> None:
        is_array = line.startswith("[[", start)
        keys, _ = _read_key(line, start + (2 if is_array else 1))
        concrete: KeyPath = ()
        for position, key in enumerate(keys):
            concrete += (key,)
            if is_array and position == len(keys) - 1:
                index = self._aot_index.get(concrete, -1) + 1
                self._aot_index[concrete] = index
                concrete += (index,)
            elif concrete in self._aot_index:
                concrete += (self._aot_index[concrete],)
        self._table = concrete
        self._record(concrete, number)

    def _scan_value(self, line: str, pos: int) -> None:
        while pos < len(line):
            if self._closing is not None:
                pos = self._close_multiline(line, pos)
                continue
            stop = _VALUE_STOP.search(line, pos)
            if stop is None:
                return
            pos, char = stop.start(), stop.group()
            if char == "#":
                return
            if line.startswith(('"""', "'''"), pos):
                self._closing = line[pos : pos + 3]
                pos += 3
            elif char == '"':
                pos = _skip_basic_string(line, pos + 1)
            elif char == "'":
                end = line.find("'", pos + 1)
                pos = len(line) if end < 0 else end + 1
            else:
                self._depth += 1 if char in "[{" else -1
                pos += 1

    def _close_multiline(self, line: str, pos: int) -> int:
        closing = self._closing
        if closing == '"""':
            found = _ML_BASIC_END.match(line, pos)
            end = -1 if found is None else found.end() - 3
        else:
            end = line.find("'''", pos)
        if end < 0:
            return len(line)
        pos = end + 3
        # Up to two more quotes right before the closing ones are content: `""""a"""""`.
        for _ in range(2):
            if pos < len(line) and line[pos] == line[end]:
                pos += 1
        self._closing = None
        return pos


def _skip_basic_string(line: str, pos: int) -> int:
    """Index just after the `"` closing a basic string whose content starts at `pos`."""
    found = _BASIC_END.match(line, pos)
    return len(line) if found is None else found.end()


def _read_key(line: str, pos: int) -> tuple[tuple[str, ...], int]:
    """Read a dotted key (bare or quoted parts) at `pos`; return it and the index after it."""
    keys: list[str] = []
    while True:
        pos = _skip_blanks(line, pos)
        part, end = _read_key_part(line, pos)
        if part is None:
            return tuple(keys), pos
        keys.append(part)
        pos = _skip_blanks(line, end)
        if pos >= len(line) or line[pos] != ".":
            return tuple(keys), pos
        pos += 1


def _skip_blanks(line: str, pos: int) -> int:
    while pos < len(line) and line[pos] in " \t":
        pos += 1
    return pos


def _read_key_part(line: str, pos: int) -> tuple[str | None, int]:
    bare = _BARE_KEY.match(line, pos)
    if bare:
        return bare.group(), bare.end()
    if pos < len(line) and line[pos] == '"':
        end = _skip_basic_string(line, pos + 1)
    elif pos < len(line) and line[pos] == "'":
        close = line.find("'", pos + 1)
        end = len(line) if close < 0 else close + 1
    else:
        return None, pos
    # Let tomllib decode the quoted key's escapes exactly as it did for the document.
    try:
        decoded = tomllib.loads(f"k = {line[pos:end]}")["k"]
    except tomllib.TOMLDecodeError:
        return None, pos
    return (decoded if isinstance(decoded, str) else None), end
