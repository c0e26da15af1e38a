"""`guard-admin scan PATH [--json]` (cmd_scan) with a real clamd: exit codes and output."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest
from scanning_fixtures import clamd_fixture, write_files  # noqa: F401 - a fixture by name

from guardd.cli.scan import cmd_scan
from sim.clamd import EICAR, ClamdProcess


def config(tmp_path: Path, clamd_socket: Path) -> Path:
    path = tmp_path / "etc" / "guardd.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        f'rules = "{tmp_path / "rules.toml"}"\nstate_dir = "{tmp_path / "state"}"\n'
        f'socket = "{tmp_path / "guardd.sock"}"\nclamd_socket = "{clamd_socket}"\n'
    )
    return path


def scan(conf: Path, path: Path, as_json: bool = False) -> int:
    return cmd_scan(argparse.Namespace(config=conf, path=path, json=as_json))


def test_clean_exits_0(
    clamd: ClamdProcess, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    medium = write_files(tmp_path / "m", {b"a.txt": b"a", b"b/c.txt": b"c"})
    assert scan(config(tmp_path, clamd.socket), medium) == 0
    assert capsys.readouterr().out == "clean: 2 files scanned\n"


def test_infected_exits_1_and_lists_the_file(
    clamd: ClamdProcess, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    medium = write_files(tmp_path / "m", {b"ok.txt": b"a", b"docs/x\n.txt": EICAR})
    assert scan(config(tmp_path, clamd.socket), medium) == 1
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("infected: EICAR test file found in 'docs/x\\x0a.txt' (Eicar-")
    assert lines[1].startswith("  INFECTED    docs/x\\x0a.txt  (Eicar-Test-Signature")
    assert len(lines) == 2


def test_not_fully_scanned_exits_2(
    clamd: ClamdProcess, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    medium = write_files(tmp_path / "m", {b"ok.txt": b"a"})
    with (medium / "huge.iso").open("wb") as f:
        f.truncate(11 << 20)
    assert scan(config(tmp_path, clamd.socket), medium) == 2
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "not scanned: 1 file is too big to scan (limits exceeded)"
    assert out[1].startswith("  TOO BIG     huge.iso  (Heuristics.Limits.Exceeded")


def test_json(clamd: ClamdProcess, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    medium = write_files(tmp_path / "m", {b"ok.txt": b"a", b"bad\xff.com": EICAR})
    conf = config(tmp_path, clamd.socket)
    assert scan(conf, medium, as_json=True) == 1
    data = json.loads(capsys.readouterr().out)
    assert data["verdict"] == "infected"
    assert (data["files_scanned"], data["files_total"], data["from_cache"]) == (2, 2, 0)
    assert data["infected"] == [
        {"path": "bad\\xff.com", "signature": data["infected"][0]["signature"]}
    ]
    assert data["infected"][0]["signature"].startswith("Eicar-Test-Signature")
    assert data["problems"] == []
    assert data["reason"].startswith("infected: ")
    assert data["db_version"] == clamd.db_version
    assert isinstance(data["seconds"], float)
    assert scan(conf, medium, as_json=True) == 1
    again = json.loads(capsys.readouterr().out)
    assert again["from_cache"] == 1  # the daemon's cache in state_dir: the clean file


def test_clamd_not_running_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    medium = write_files(tmp_path / "m", {b"ok.txt": b"a"})
    assert scan(config(tmp_path, tmp_path / "no-clamd.sock"), medium) == 2
    out = capsys.readouterr().out
    assert out == "cannot scan right now: the virus scanner is not running\n"


def test_bad_paths_exit_2_with_one_line(
    clamd: ClamdProcess, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    conf = config(tmp_path, clamd.socket)
    assert scan(conf, tmp_path / "absent") == 2
    assert capsys.readouterr().err == f"guard-admin: {tmp_path / 'absent'}: no such folder\n"
    (tmp_path / "file.txt").write_text("x")
    assert scan(conf, tmp_path / "file.txt") == 2
    assert capsys.readouterr().err == f"guard-admin: {tmp_path / 'file.txt'}: not a folder\n"
    bad = tmp_path / "bad.toml"
    bad.write_text('rules = "r"\n')
    assert scan(bad, tmp_path) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"guard-admin: {bad}: missing key")
    assert err.count("\n") == 1
