"""The exchange spool: written atomically, read back without trusting the share it sits on."""

from __future__ import annotations

import errno
import json
import os
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from guardd.exchange import spool as spool_module
from guardd.exchange.spool import MAX_DOCUMENT_BYTES, Entry, Spool, SpoolError
from sim.env import real_env

DOC: dict[str, Any] = {"id": "inc-1", "time": 1700000000.5, "infected": [{"path": "a"}]}
MISSING = "does not exist (is the share mounted?)"


@pytest.fixture
def root(tmp_path: Path) -> Path:
    folder = tmp_path / "exchange"
    folder.mkdir()
    return folder


@pytest.fixture
def target(tmp_path: Path) -> Path:
    """Where a hostile symlink points (a stand-in for /etc)."""
    folder = tmp_path / "etc"
    folder.mkdir()
    return folder


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


def put(root: Path, name: str | bytes, content: bytes, kind: str = "incidents") -> None:
    """Write a file into the spool as another machine on the share would."""
    folder = root / kind
    folder.mkdir(exist_ok=True)
    path = os.path.join(os.fsencode(folder), os.fsencode(name))
    with open(path, "wb") as f:
        f.write(content)


def only(entries: Iterator[Entry]) -> Entry:
    [entry] = list(entries)
    return entry


# --- writing and reading back ----------------------------------------------------------------


def test_a_document_round_trips(root: Path) -> None:
    spool = Spool(root)
    path = spool.write("incidents", "inc-1", DOC)
    assert path == root / "incidents" / "inc-1.json"
    assert only(spool.read_all("incidents")) == Entry("inc-1.json", DOC)
    assert stat.S_IMODE(path.stat().st_mode) & 0o007 == 0
    assert leftovers(root / "incidents") == []


def test_bad_ids_and_kinds_are_refused(root: Path) -> None:
    spool = Spool(root)
    with pytest.raises(SpoolError, match="not a document id"):
        spool.write("incidents", "../x", DOC)
    with pytest.raises(SpoolError, match="not a document kind"):
        spool.write("../etc", "inc-1", DOC)
    with pytest.raises(SpoolError, match="not a document kind"):
        list(spool.read_all("a/b"))


def test_an_oversized_document_is_not_written(root: Path) -> None:
    with pytest.raises(SpoolError, match="too large"):
        Spool(root).write("incidents", "inc-1", {"x": "a" * MAX_DOCUMENT_BYTES})
    assert not (root / "incidents" / "inc-1.json").exists()


# --- 1. symlinked folders are refused, never followed ----------------------------------------


def test_a_symlinked_kind_folder_is_refused_on_write(root: Path, target: Path) -> None:
    (root / "incidents").symlink_to(target)
    with pytest.raises(SpoolError, match=r"incidents is a symbolic link, not a folder: refused"):
        Spool(root).write("incidents", "inc-1", DOC)
    assert list(target.iterdir()) == []


def test_a_dangling_symlinked_kind_folder_is_refused_on_write(root: Path, target: Path) -> None:
    (root / "incidents").symlink_to(target / "new")
    with pytest.raises(SpoolError, match="symbolic link"):
        Spool(root).write("incidents", "inc-1", DOC)
    assert not (target / "new").exists()


def test_a_symlinked_kind_folder_is_refused_on_read(root: Path, target: Path) -> None:
    (target / "inc-1.json").write_text(json.dumps(DOC))
    (root / "incidents").symlink_to(target)
    with pytest.raises(SpoolError, match="symbolic link"):
        list(Spool(root).read_all("incidents"))


def test_a_kind_folder_that_is_a_file_is_refused(root: Path) -> None:
    (root / "incidents").write_text("")
    with pytest.raises(SpoolError, match="not a folder"):
        Spool(root).write("incidents", "inc-1", DOC)
    with pytest.raises(SpoolError, match="not a folder"):
        list(Spool(root).read_all("incidents"))


def test_a_symlinked_root_is_refused(tmp_path: Path, target: Path) -> None:
    (tmp_path / "link").symlink_to(target)
    spool = Spool(tmp_path / "link")
    with pytest.raises(SpoolError, match=r"the exchange folder .* is a symbolic link"):
        spool.write("incidents", "inc-1", DOC)
    with pytest.raises(SpoolError, match="symbolic link"):
        list(spool.read_all("incidents"))
    with pytest.raises(SpoolError, match="symbolic link"):
        spool.check_root()
    assert list(target.iterdir()) == []


def test_a_kind_folder_swapped_for_a_symlink_mid_write_is_not_followed(
    root: Path, target: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The temp file, the rename and the fsync all go through the folder opened first."""
    real_write_all = spool_module._write_all

    def swap_then_write(fd: int, data: bytes) -> None:
        (root / "incidents").rename(root / "moved")
        (root / "incidents").symlink_to(target)
        real_write_all(fd, data)

    monkeypatch.setattr(spool_module, "_write_all", swap_then_write)
    Spool(root).write("incidents", "inc-1", DOC)
    assert list(target.iterdir()) == []
    assert json.loads((root / "moved" / "inc-1.json").read_text()) == DOC


# --- 2. the root is never made with its parents ----------------------------------------------


def test_a_missing_root_is_not_created_by_write(tmp_path: Path) -> None:
    share = tmp_path / "mnt" / "share"
    with pytest.raises(SpoolError) as caught:
        Spool(share).write("incidents", "inc-1", DOC)
    assert str(caught.value) == f"the exchange folder {share} {MISSING}"
    assert not (tmp_path / "mnt").exists()


def test_a_missing_root_without_its_parent_is_refused_even_with_create_root(
    tmp_path: Path,
) -> None:
    with pytest.raises(SpoolError, match="parent does not exist"):
        Spool(tmp_path / "mnt" / "share", create_root=True).write("incidents", "inc-1", DOC)
    assert not (tmp_path / "mnt").exists()


def test_create_root_makes_the_root_but_not_its_parents(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        Spool(tmp_path / "exchange", create_root=True).write("incidents", "inc-1", DOC)
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "exchange").stat().st_mode) == 0o750
    assert stat.S_IMODE((tmp_path / "exchange" / "incidents").stat().st_mode) == 0o750
    assert (tmp_path / "exchange" / "incidents" / "inc-1.json").is_file()


def test_write_makes_only_the_kind_folder(root: Path) -> None:
    Spool(root).write("requests", "req-1", DOC)
    assert sorted(p.name for p in root.iterdir()) == ["requests"]


def test_ensure_root(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "exchange")
    old = os.umask(0o022)
    try:
        spool.ensure_root()
        spool.ensure_root()  # already there: fine
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "exchange").stat().st_mode) == 0o750
    spool.check_root()
    assert list(spool.read_all("incidents")) == []


def test_ensure_root_does_not_make_parents(tmp_path: Path) -> None:
    with pytest.raises(SpoolError, match="parent does not exist"):
        Spool(tmp_path / "mnt" / "share").ensure_root()
    assert not (tmp_path / "mnt").exists()


def test_ensure_root_refuses_a_symlink(tmp_path: Path, target: Path) -> None:
    (tmp_path / "exchange").symlink_to(target)
    with pytest.raises(SpoolError, match="symbolic link"):
        Spool(tmp_path / "exchange").ensure_root()


def test_a_missing_root_reads_as_empty_and_check_root_says_why(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "share")
    assert list(spool.read_all("incidents")) == []
    with pytest.raises(SpoolError) as caught:
        spool.check_root()
    assert str(caught.value) == f"the exchange folder {tmp_path / 'share'} {MISSING}"


def test_a_missing_kind_folder_reads_as_empty(root: Path) -> None:
    assert list(Spool(root).read_all("incidents")) == []


# --- 3. untrusted entries are looked at before they are opened -------------------------------


def test_a_fifo_on_the_share_is_never_opened(root: Path) -> None:
    """Opening a FIFO for reading would release a writer blocked in open(): it must not.

    The writer is another process: under umockdev's preload (make test) a thread blocked in
    open() would hold the preload's lock and stall every open() of this process.
    """
    (root / "incidents").mkdir()
    fifo = root / "incidents" / "inc-1.json"
    os.mkfifo(fifo)
    code = f"import os; os.open({str(fifo)!r}, os.O_WRONLY); print('opened', flush=True)"
    writer = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, env=real_env())
    try:
        entry = only(Spool(root).read_all("incidents"))
        assert entry == Entry("inc-1.json", None, "not a regular file")
        time.sleep(0.3)
        assert writer.poll() is None, "the spool opened the FIFO"
    finally:
        release = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
        writer.communicate(timeout=5)
        os.close(release)


def test_a_device_node_on_the_share_is_refused(root: Path) -> None:
    (root / "incidents").mkdir()
    try:
        os.mknod(root / "incidents" / "inc-1.json", stat.S_IFCHR | 0o600, os.makedev(1, 3))
    except PermissionError:
        pytest.skip("cannot make device nodes here")
    entry = only(Spool(root).read_all("incidents"))
    assert entry == Entry("inc-1.json", None, "not a regular file")


def test_a_symlinked_entry_is_refused(root: Path, target: Path) -> None:
    (target / "secret").write_text(json.dumps({"secret": 1}))
    (root / "incidents").mkdir()
    (root / "incidents" / "inc-1.json").symlink_to(target / "secret")
    assert only(Spool(root).read_all("incidents")) == Entry("inc-1.json", None, "a symbolic link")


def test_an_oversized_entry_is_refused(root: Path) -> None:
    put(root, "inc-1.json", b" " * (MAX_DOCUMENT_BYTES + 1))
    assert only(Spool(root).read_all("incidents")).problem == "too large"


def test_an_entry_swapped_between_the_check_and_the_open_is_refused(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without /proc the entry is opened again by name: a different file there is refused."""
    put(root, "inc-1.json", json.dumps(DOC).encode())
    real_open = os.open

    def no_proc(path: Any, flags: int, *args: Any, **kwargs: Any) -> int:
        if str(path).startswith("/proc/self/fd/"):
            os.rename(root / "incidents" / "inc-1.json", root / "incidents" / "old")
            put(root, "inc-1.json", json.dumps({"swapped": True}).encode())
            raise FileNotFoundError(errno.ENOENT, "no /proc")
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", no_proc)
    entry = only(Spool(root).read_all("incidents"))
    assert entry == Entry("inc-1.json", None, "replaced while being read")


def test_names_that_are_not_documents_are_refused(root: Path) -> None:
    put(root, "notes.txt", b"{}")
    put(root, "INC-1.json", b"{}")
    put(root, ".inc-1.abcd.tmp", b"{}")  # a temp file is skipped, not reported
    entries = list(Spool(root).read_all("incidents"))
    assert entries == [
        Entry("INC-1.json", None, "not a document name"),
        Entry("notes.txt", None, "not a document name"),
    ]


def test_a_name_that_is_not_utf8_comes_back_as_text(root: Path) -> None:
    put(root, b"inc-\xff.json", b"{}")
    entry = only(Spool(root).read_all("incidents"))
    assert entry.problem == "not a document name"
    assert entry.name == "inc-\\xff.json"
    entry.name.encode("utf-8")  # printable and JSON-encodable, unlike a surrogate escape


# --- 4. short writes and short reads on network filesystems ----------------------------------


def test_short_writes_are_continued(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real_write = os.write
    monkeypatch.setattr(os, "write", lambda fd, data: real_write(fd, bytes(data[:7])))
    Spool(root).write("incidents", "inc-1", DOC)
    monkeypatch.undo()
    assert json.loads((root / "incidents" / "inc-1.json").read_text()) == DOC


def test_short_reads_are_continued(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    Spool(root).write("incidents", "inc-1", DOC)
    real_read = os.read
    monkeypatch.setattr(os, "read", lambda fd, n: real_read(fd, min(n, 5)))
    assert only(Spool(root).read_all("incidents")) == Entry("inc-1.json", DOC)


def test_a_file_that_grows_past_the_limit_while_read_is_refused(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    put(root, "inc-1.json", b"{}")
    real_read = os.read
    monkeypatch.setattr(os, "read", lambda fd, n: b" " * n if n else real_read(fd, n))
    assert only(Spool(root).read_all("incidents")).problem == "too large"


def failing_write(fd: int, data: bytes) -> int:
    raise OSError(errno.ENOSPC, "No space left on device")


@pytest.mark.parametrize(
    "write", [failing_write, lambda fd, data: 0], ids=["no-space", "nothing-taken"]
)
def test_a_failed_write_leaves_no_temp_file(
    root: Path, monkeypatch: pytest.MonkeyPatch, write: Any
) -> None:
    Spool(root).write("incidents", "inc-1", DOC)  # an older version stays as it was
    monkeypatch.setattr(os, "write", write)
    with pytest.raises(SpoolError, match="cannot write"):
        Spool(root).write("incidents", "inc-1", {"new": True})
    monkeypatch.undo()
    assert leftovers(root / "incidents") == []
    assert json.loads((root / "incidents" / "inc-1.json").read_text()) == DOC


def test_a_failed_fsync_or_rename_leaves_no_temp_file(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: Any, **kwargs: Any) -> None:
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(os, "rename", broken)
    with pytest.raises(SpoolError, match="Input/output error"):
        Spool(root).write("incidents", "inc-1", DOC)
    monkeypatch.setattr(os, "fsync", broken)
    with pytest.raises(SpoolError, match="Input/output error"):
        Spool(root).write("incidents", "inc-2", DOC)
    monkeypatch.undo()
    assert sorted(p.name for p in (root / "incidents").iterdir()) == []


# --- 5. hostile JSON never raises out of read_all --------------------------------------------


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b'{"time": ' + b"1" * 5000 + b"}", "not valid JSON (a number with too many digits)"),
        (b'{"time": NaN}', "not valid JSON (NaN is not a number a document may hold)"),
        (b'{"time": Infinity}', "not valid JSON (Infinity is not a number a document may hold)"),
        (b'{"time": -Infinity}', "not valid JSON (-Infinity is not a number a document may hold)"),
        (b'{"time": 1e400}', "not valid JSON (1e400 is out of range)"),
        (b'{"time": [-1e400]}', "not valid JSON (-1e400 is out of range)"),
        (b"[" * 200_000 + b"]" * 200_000, "not valid JSON (nested too deeply)"),
        (b'{"a":' * 100_000 + b"1" + b"}" * 100_000, "not valid JSON (nested too deeply)"),
        (b'{"a":' * 40 + b"1" + b"}" * 40, "not valid JSON (nested too deeply)"),
        (b'{"a": "\\ud800"}', "not valid JSON (text that is not Unicode)"),
        (b'{"\\udfff": 1}', "not valid JSON (text that is not Unicode)"),
        (b'{"a": "\xff"}', "not valid JSON (not UTF-8 text)"),
        (b'{"a": ', "not valid JSON"),
        (b"", "not valid JSON"),
        (b"[1, 2]", "not a JSON object"),
        (b"1e5", "not a JSON object"),
    ],
    ids=[
        "5000-digits",
        "nan",
        "infinity",
        "-infinity",
        "1e400",
        "-1e400-in-a-list",
        "deep-lists",
        "deep-objects",
        "deeper-than-max-depth",
        "lone-surrogate",
        "lone-surrogate-key",
        "not-utf8",
        "truncated",
        "empty",
        "a-list",
        "a-number",
    ],
)
def test_hostile_json_is_refused_not_raised(root: Path, content: bytes, problem: str) -> None:
    put(root, "inc-1.json", content)
    Spool(root).write("incidents", "inc-2", DOC)  # a good neighbour is still read
    assert list(Spool(root).read_all("incidents")) == [
        Entry("inc-1.json", None, problem),
        Entry("inc-2.json", DOC),
    ]


def test_big_but_finite_numbers_and_moderate_nesting_are_read(root: Path) -> None:
    document = {"n": 10**4000, "f": 1.5e300, "deep": [[[[{"a": [1]}]]]]}
    put(root, "inc-1.json", json.dumps(document).encode())
    assert only(Spool(root).read_all("incidents")).document == document
