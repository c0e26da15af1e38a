"""A small, bounded reader of INI-like config text that never raises.

configparser raises on duplicate keys, odd headers and interpolation, and Qt's QSettings files
escape values its own way; the readers only need `[section]` and `key = value` lines.
"""

from __future__ import annotations

from collections.abc import Iterator

MAX_LINES = 4096
MAX_LINE_LEN = 4096


def ini_lines(text: str) -> Iterator[tuple[str, str, str]]:
    """(section, key, value) for each `key = value` or `key=value` line, in order.

    Comment lines (# or ;), blank lines and lines without '=' are skipped; keys and values are
    stripped; at most MAX_LINES lines are read and longer lines are skipped.
    """
    section = ""
    for number, raw in enumerate(text.split("\n")):
        if number >= MAX_LINES:
            return
        line = raw.strip()
        if not line or line[0] in "#;" or len(line) > MAX_LINE_LEN:
            continue
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1].strip()
            continue
        key, equals, value = line.partition("=")
        if equals:
            yield section, key.strip(), value.strip()


def unquote(value: str) -> str:
    """A value without the double quotes around it, with backslash escapes undone."""
    if len(value) < 2 or value[0] != '"' or value[-1] != '"':
        return value
    inner, out, index = value[1:-1], [], 0
    while index < len(inner):
        char = inner[index]
        if char == "\\" and index + 1 < len(inner):
            index += 1
            char = {"n": "\n", "t": "\t"}.get(inner[index], inner[index])
        out.append(char)
        index += 1
    return "".join(out)
