"""A spool folder: documents written atomically, read back without trusting them.

Each kind of document has its own sub-folder; each document is one JSON file named by its id.
Writing is write-to-temp, fsync, rename, fsync of the folder, so a kill -9 or a power cut
leaves either the old state or the new document, never half of one. Reading refuses symlinks,
anything that is not a regular file, oversized files and names that are not plain ids: the
folder may sit on a network share that other machines write to.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import stat
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MAX_DOCUMENT_BYTES = 1024 * 1024
_ID = re.compile(r"[a-z0-9][a-z0-9-]{0,63}")
_KIND = re.compile(r"[a-z]{1,32}")


class SpoolError(Exception):
    """A document could not be written or was refused on reading."""


@dataclass(frozen=True)
class Entry:
    """A document read from the spool, or why it could not be read."""

    name: str
    document: dict[str, Any] | None
    problem: str = ""


def new_id(prefix: str, now: float) -> str:
    """A fresh document id: a prefix, the UTC time, and randomness (ids sort by time)."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime(now))
    return f"{prefix}-{stamp}-{secrets.token_hex(4)}"


class Spool:
    """The spool folder at `root`."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _folder(self, kind: str) -> Path:
        if not _KIND.fullmatch(kind):
            raise SpoolError(f"not a document kind: {kind!r}")
        return self.root / kind

    def write(self, kind: str, doc_id: str, document: dict[str, Any]) -> Path:
        """Write a document atomically; its id must be a plain name."""
        if not _ID.fullmatch(doc_id):
            raise SpoolError(f"not a document id: {doc_id!r}")
        folder = self._folder(kind)
        folder.mkdir(parents=True, exist_ok=True, mode=0o750)
        data = json.dumps(document, ensure_ascii=False, sort_keys=True, indent=1).encode()
        if len(data) > MAX_DOCUMENT_BYTES:
            raise SpoolError(f"document {doc_id} is too large")
        tmp = folder / f".{doc_id}.{secrets.token_hex(4)}.tmp"
        fd = os.open(
            tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC | os.O_NOFOLLOW, 0o640
        )
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        final = folder / f"{doc_id}.json"
        os.replace(tmp, final)
        _fsync_dir(folder)
        return final

    def read_all(self, kind: str) -> Iterator[Entry]:
        """Every document of a kind, sorted by name; refused ones come with their problem."""
        folder = self._folder(kind)
        try:
            names = sorted(os.listdir(folder))
        except FileNotFoundError:
            return
        for name in names:
            if name.startswith("."):
                continue
            yield _read(folder, name)


def _read(folder: Path, name: str) -> Entry:
    if not name.endswith(".json") or not _ID.fullmatch(name[:-5]):
        return Entry(name, None, "not a document name")
    try:
        raw = _read_regular_file(folder / name)
    except SpoolError as e:
        return Entry(name, None, str(e))
    try:
        document = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        return Entry(name, None, "not valid JSON")
    if not isinstance(document, dict):
        return Entry(name, None, "not a JSON object")
    return Entry(name, document)


def _read_regular_file(path: Path) -> bytes:
    """The bytes of a regular file that is not a symlink and not too large."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError as e:
        raise SpoolError(f"cannot open: {e.strerror or e}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise SpoolError("not a regular file")
        if info.st_size > MAX_DOCUMENT_BYTES:
            raise SpoolError("too large")
        return os.read(fd, MAX_DOCUMENT_BYTES + 1)
    finally:
        os.close(fd)


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
