"""A spool folder: documents written atomically, read back without trusting them.

Each kind of document has its own sub-folder; each document is one JSON file named by its id.
Writing is write-to-temp, fsync, rename, fsync of the folder, so a kill -9 or a power cut
leaves either the old state or the new document, never half of one.

The folder may sit on a network share that other machines write to, and root reads and
writes it, so nothing in it is trusted:

- the spool folder and each kind folder are opened with O_NOFOLLOW and every file is
  created, renamed and read relative to those open folders, so a kind folder replaced by a
  symlink (``incidents -> /etc``) is refused rather than followed;
- the spool folder itself is never created with its parents: an unmounted share must not
  silently get a local folder that the share then hides;
- an entry is opened with O_PATH first and checked (a regular file, not too large) before
  it is opened for reading, so root never opens a device node or a FIFO left on the share;
- a document is parsed without trusting it: NaN, Infinity, numbers out of range, numbers
  with too many digits, deep nesting and text that is not UTF-8 refuse the document, they
  never raise.
"""

from __future__ import annotations

import contextlib
import errno
import json
import math
import os
import re
import secrets
import stat
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

MAX_DOCUMENT_BYTES = 1024 * 1024
MAX_DEPTH = 32  # documents are a few levels deep; anything deeper is refused, not parsed on
_ID = re.compile(r"[a-z0-9][a-z0-9-]{0,63}")
_KIND = re.compile(r"[a-z]{1,32}")
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FOLDER_MODE = 0o750
_READ_CHUNK = 64 * 1024


class SpoolError(Exception):
    """A document could not be written or was refused on reading."""


class _MissingError(SpoolError):
    """The spool folder or a kind folder does not exist."""


class _RefusedError(ValueError):
    """A JSON value a document may not hold."""


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
    """The spool folder at `root`.

    The root is created by `write` only when `create_root` is true (a local folder the daemon
    owns), and then without its parents; otherwise it must exist already (a mounted share).
    """

    def __init__(self, root: Path, create_root: bool = False) -> None:
        self.root = root
        self.create_root = create_root

    def _missing(self) -> SpoolError:
        return _MissingError(
            f"the exchange folder {self.root} does not exist (is the share mounted?)"
        )

    def ensure_root(self) -> None:
        """Create the spool folder if it is missing (not its parents), mode 0o750."""
        try:
            os.mkdir(self.root, _FOLDER_MODE)
        except FileExistsError:
            pass  # a symlink or a file by that name is refused when it is opened
        except FileNotFoundError:
            raise SpoolError(
                f"cannot create the exchange folder {self.root}: its parent does not exist"
            ) from None
        except OSError as e:
            raise SpoolError(
                f"cannot create the exchange folder {self.root}: {e.strerror or e}"
            ) from None
        os.close(self._open_root())

    def check_root(self) -> None:
        """Raise SpoolError when the spool folder is missing or is not a plain folder."""
        os.close(self._open_root())

    def _open_root(self) -> int:
        try:
            return os.open(self.root, _DIR_FLAGS)
        except FileNotFoundError:
            raise self._missing() from None
        except OSError as e:
            where = f"the exchange folder {self.root}"
            raise _folder_error(where, e, self._is_symlink(None, self.root)) from None

    def _open_kind(self, root_fd: int, kind: str) -> int:
        try:
            return os.open(kind, _DIR_FLAGS, dir_fd=root_fd)
        except FileNotFoundError:
            raise _MissingError(f"{self.root / kind} does not exist") from None
        except OSError as e:
            where = str(self.root / kind)
            raise _folder_error(where, e, self._is_symlink(root_fd, kind)) from None

    @staticmethod
    def _is_symlink(dir_fd: int | None, name: str | Path) -> bool:
        try:
            return stat.S_ISLNK(os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mode)
        except OSError:
            return False

    def write(self, kind: str, doc_id: str, document: dict[str, Any]) -> Path:
        """Write a document atomically; its id must be a plain name."""
        _check_kind(kind)
        if not _ID.fullmatch(doc_id):
            raise SpoolError(f"not a document id: {doc_id!r}")
        data = json.dumps(document, ensure_ascii=False, sort_keys=True, indent=1).encode()
        if len(data) > MAX_DOCUMENT_BYTES:
            raise SpoolError(f"document {doc_id} is too large")
        if self.create_root:
            self.ensure_root()
        root_fd = self._open_root()
        try:
            try:
                os.mkdir(kind, _FOLDER_MODE, dir_fd=root_fd)
            except FileExistsError:
                pass  # a symlink or a file by that name is refused when it is opened
            except OSError as e:
                raise SpoolError(f"cannot create {self.root / kind}: {e.strerror or e}") from None
            folder_fd = self._open_kind(root_fd, kind)
        finally:
            os.close(root_fd)
        try:
            _write_file(folder_fd, doc_id, data)
        except OSError as e:
            where = self.root / kind / f"{doc_id}.json"
            raise SpoolError(f"cannot write {where}: {e.strerror or e}") from e
        finally:
            os.close(folder_fd)
        return self.root / kind / f"{doc_id}.json"

    def read_all(self, kind: str) -> Iterator[Entry]:
        """Every document of a kind, sorted by name; refused ones come with their problem.

        A missing spool folder or kind folder has no documents; a spool or kind folder that
        is a symlink (or not a folder) raises SpoolError. A document never raises.
        """
        _check_kind(kind)
        try:
            root_fd = self._open_root()
        except _MissingError:
            return iter(())
        try:
            folder_fd = self._open_kind(root_fd, kind)
        except _MissingError:
            return iter(())
        finally:
            os.close(root_fd)
        try:
            try:
                names = sorted(os.listdir(folder_fd))
            except OSError as e:
                raise SpoolError(f"cannot list {self.root / kind}: {e.strerror or e}") from None
            return iter([_read(folder_fd, name) for name in names if not name.startswith(".")])
        finally:
            os.close(folder_fd)


def _check_kind(kind: str) -> None:
    if not _KIND.fullmatch(kind):
        raise SpoolError(f"not a document kind: {kind!r}")


def _folder_error(where: str, error: OSError, is_symlink: bool) -> SpoolError:
    if is_symlink:
        return SpoolError(f"{where} is a symbolic link, not a folder: refused")
    if error.errno == errno.ENOTDIR:
        return SpoolError(f"{where} is not a folder: refused")
    return SpoolError(f"cannot open {where}: {error.strerror or error}")


def _write_file(folder_fd: int, doc_id: str, data: bytes) -> None:
    """Write to a temp file, fsync, rename over the document, fsync the folder."""
    tmp = f".{doc_id}.{secrets.token_hex(4)}.tmp"
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC | os.O_NOFOLLOW
    fd = os.open(tmp, flags, 0o640, dir_fd=folder_fd)
    try:
        try:
            _write_all(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.rename(tmp, f"{doc_id}.json", src_dir_fd=folder_fd, dst_dir_fd=folder_fd)
    except BaseException:
        with contextlib.suppress(OSError):  # the share may be gone: nothing more can be done
            os.unlink(tmp, dir_fd=folder_fd)
        raise
    os.fsync(folder_fd)


def _write_all(fd: int, data: bytes) -> None:
    """Write every byte: a network filesystem may take fewer than asked at a time."""
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        if written <= 0:
            raise OSError(errno.EIO, "the file system took no bytes")
        view = view[written:]


def _read(folder_fd: int, name: str) -> Entry:
    if not name.endswith(".json") or not _ID.fullmatch(name[:-5]):
        return Entry(_shown(name), None, "not a document name")
    try:
        raw = _read_regular_file(folder_fd, name)
    except SpoolError as e:
        return Entry(name, None, str(e))
    try:
        return Entry(name, _parse(raw))
    except SpoolError as e:
        return Entry(name, None, str(e))


def _shown(name: str) -> str:
    """A file name as valid text (a name that is not UTF-8 keeps its bytes as escapes)."""
    return name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def _read_regular_file(folder_fd: int, name: str) -> bytes:
    """The bytes of a regular file that is not a symlink and not too large.

    The entry is looked at through an O_PATH descriptor (which opens nothing: no device
    driver, no FIFO) and is only opened for reading once it is known to be a regular file,
    through that same descriptor, so it cannot be swapped in between.
    """
    try:
        path_fd = os.open(name, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=folder_fd)
    except OSError as e:
        raise SpoolError(f"cannot open: {e.strerror or e}") from None
    try:
        first = os.fstat(path_fd)
        _check_regular(first)
        fd = _reopen(path_fd, folder_fd, name)
    finally:
        os.close(path_fd)
    try:
        second = os.fstat(fd)
        if (second.st_dev, second.st_ino) != (first.st_dev, first.st_ino):
            raise SpoolError("replaced while being read")
        _check_regular(second)
        return _read_bounded(fd)
    except OSError as e:
        raise SpoolError(f"cannot read: {e.strerror or e}") from None
    finally:
        os.close(fd)


def _check_regular(info: os.stat_result) -> None:
    if stat.S_ISLNK(info.st_mode):
        raise SpoolError("a symbolic link")
    if not stat.S_ISREG(info.st_mode):
        raise SpoolError("not a regular file")
    if info.st_size > MAX_DOCUMENT_BYTES:
        raise SpoolError("too large")


def _reopen(path_fd: int, folder_fd: int, name: str) -> int:
    """Open the file an O_PATH descriptor names, for reading."""
    flags = os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC
    try:
        return os.open(f"/proc/self/fd/{path_fd}", flags)
    except FileNotFoundError:
        pass  # no /proc: open by name; the st_dev/st_ino check catches a swap
    except OSError as e:
        raise SpoolError(f"cannot open: {e.strerror or e}") from None
    try:
        return os.open(name, flags | os.O_NOFOLLOW, dir_fd=folder_fd)
    except OSError as e:
        raise SpoolError(f"cannot open: {e.strerror or e}") from None


def _read_bounded(fd: int) -> bytes:
    """Read to the end of the file; a file that grows past the limit is refused."""
    chunks: list[bytes] = []
    total = 0
    while True:
        chunk = os.read(fd, min(_READ_CHUNK, MAX_DOCUMENT_BYTES + 1 - total))
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)
        total += len(chunk)
        if total > MAX_DOCUMENT_BYTES:
            raise SpoolError("too large")


def _parse(raw: bytes) -> dict[str, Any]:
    """A JSON object from untrusted bytes, or SpoolError saying why not."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise SpoolError("not valid JSON (not UTF-8 text)") from None
    try:
        document = json.loads(text, parse_constant=_refuse_constant, parse_float=_finite_float)
    except _RefusedError as e:
        raise SpoolError(f"not valid JSON ({e})") from None
    except RecursionError:
        raise SpoolError("not valid JSON (nested too deeply)") from None
    except json.JSONDecodeError:
        raise SpoolError("not valid JSON") from None
    except ValueError:  # int(): more digits than Python converts
        raise SpoolError("not valid JSON (a number with too many digits)") from None
    if not isinstance(document, dict):
        raise SpoolError("not a JSON object")
    _check_tree(document)
    return document


def _refuse_constant(name: str) -> NoReturn:
    raise _RefusedError(f"{name} is not a number a document may hold")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _RefusedError(f"{text[:20]} is out of range")
    return value


def _check_tree(document: dict[str, Any]) -> None:
    """Refuse deep nesting and text that cannot be written back out as UTF-8.

    JSON escapes can spell lone surrogates (\\ud800), which are not text: they would make
    printing or re-encoding the document raise later, far from here.
    """
    stack: list[tuple[object, int]] = [(document, 1)]
    while stack:
        value, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise SpoolError("not valid JSON (nested too deeply)")
        if isinstance(value, dict):
            for key, item in value.items():
                _check_text(key)
                stack.append((item, depth + 1))
        elif isinstance(value, list):
            stack.extend((item, depth + 1) for item in value)
        elif isinstance(value, str):
            _check_text(value)


def _check_text(text: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise SpoolError("not valid JSON (text that is not Unicode)") from None
