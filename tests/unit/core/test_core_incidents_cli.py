"""`guard-admin incidents`: hostile incident documents are shown or refused, never a traceback."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from guardd.cli.admin import main
from guardd.cli.incidents import print_incident
from guardd.exchange.spool import Spool

INCIDENT: dict[str, Any] = {
    "id": "inc-20240102-030405-abcd1234",
    "version": 1,
    "time": 1704164645.0,
    "machine": "lab-pc-07",
    "device": {"id": "2-1", "serial": "SCHOOL-000124", "label": "STAFF"},
    "volume": "sdb1",
    "infected": [{"path": "a/eicar.com", "signature": "Eicar-Test-Signature"}],
    "signature_db": 27000,
    "action": "held read-only and switched off",
}


@pytest.fixture
def exchange(tmp_path: Path) -> Path:
    return tmp_path / "state" / "exchange"


@pytest.fixture
def config(tmp_path: Path, exchange: Path) -> Path:
    """A config whose exchange is <state_dir>/exchange (the daemon's local default)."""
    (tmp_path / "state").mkdir()
    path = tmp_path / "guardd.toml"
    path.write_text(
        f'rules = "{tmp_path / "rules"}"\n'
        f'state_dir = "{tmp_path / "state"}"\n'
        f'socket = "{tmp_path / "guardd.sock"}"\n'
    )
    return path


def put(exchange: Path, name: str | bytes, content: bytes) -> None:
    """An incident file as another machine on the share would leave it."""
    folder = exchange / "incidents"
    folder.mkdir(parents=True, exist_ok=True)
    with open(os.path.join(os.fsencode(folder), os.fsencode(name)), "wb") as f:
        f.write(content)


def incidents(
    config: Path, capsys: pytest.CaptureFixture[str], *extra: str
) -> tuple[int, str, str]:
    code = main(["--config", str(config), "incidents", *extra])
    out, err = capsys.readouterr()
    return code, out, err


def test_an_incident_is_shown_with_its_machine(
    config: Path, exchange: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    exchange.mkdir()
    Spool(exchange).write("incidents", INCIDENT["id"], INCIDENT)
    code, out, err = incidents(config, capsys)
    assert (code, err) == (0, "")
    assert out.splitlines() == [
        "inc-20240102-030405-abcd1234  2024-01-02 03:04:05 UTC  "
        "drive 2-1 (serial SCHOOL-000124, 'STAFF')",
        "    machine: lab-pc-07",
        "    1 infected file:",
        "      a/eicar.com  (Eicar-Test-Signature)",
        "    action: held read-only and switched off",
    ]


def test_a_missing_exchange_folder_is_not_no_incidents(
    config: Path, exchange: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for extra in ((), ("--json",)):
        code, out, err = incidents(config, capsys, *extra)
        assert code == 1
        assert out == ""
        assert err == (
            f"guard-admin: the exchange folder {exchange} does not exist (is the share mounted?)\n"
        )


def test_an_exchange_without_incidents_says_so(
    config: Path, exchange: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    exchange.mkdir()
    assert incidents(config, capsys) == (
        0,
        "No incidents: no virus has been found on a drive.\n",
        "",
    )
    assert incidents(config, capsys, "--json") == (0, "[]\n", "")


def test_a_symlinked_incidents_folder_is_an_error_not_a_listing(
    tmp_path: Path, config: Path, exchange: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "etc").mkdir()
    exchange.mkdir()
    (exchange / "incidents").symlink_to(tmp_path / "etc")
    code, out, err = incidents(config, capsys)
    assert (code, out) == (1, "")
    assert "incidents is a symbolic link, not a folder: refused" in err
    assert "Traceback" not in err


HOSTILE: list[bytes] = [
    b'{"id": "x", "time": 1e400}',
    b'{"id": "x", "time": -Infinity}',
    b'{"id": "x", "time": NaN}',
    b'{"id": "x", "time": ' + b"9" * 5000 + b"}",
    b"[" * 100_000,
    b'{"id": "\\ud800"}',
    b'{"id": "x", "time": "yesterday", "device": ["2-1"], "infected": "everything"}',
    b'{"id": {"a": 1}, "time": 1e300, "device": {"label": [1], "id": {}}, "infected": [1, null]}',
    b'{"time": -1e300, "machine": ["a"], "infected": [{"path": [], "signature": {}}]}',
    b'{"time": true, "device": "2-1", "action": 5}',
]


def hostile_exchange(exchange: Path) -> None:
    for number, content in enumerate(HOSTILE):
        put(exchange, f"inc-{number:02d}.json", content)
    put(exchange, b"inc-\xff\x1b[2J.json", b"{}")
    Spool(exchange).write("incidents", "inc-99", INCIDENT)


def test_hostile_documents_never_raise(
    config: Path, exchange: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    hostile_exchange(exchange)
    code, out, err = incidents(config, capsys)
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert "inc-00.json: ignored (not valid JSON (1e400 is out of range))" in lines
    assert "inc-03.json: ignored (not valid JSON (a number with too many digits))" in lines
    assert "inc-04.json: ignored (not valid JSON (nested too deeply))" in lines
    assert "x  ?  drive (none) (serial (none))" in lines  # a string time, a list device
    assert "?  ?  drive ? (serial (none), '?')" in lines  # 1e300: no clock shows that year
    assert "    machine: lab-pc-07" in lines
    assert "\x1b" not in out
    assert "inc-\\xff\\x1b[2J.json: ignored (not a document name)" in lines


def test_hostile_documents_as_json(
    config: Path, exchange: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    hostile_exchange(exchange)
    code, out, err = incidents(config, capsys, "--json")
    assert (code, err) == (0, "")
    listed = json.loads(out)
    assert listed[0] == {"file": "inc-00.json", "problem": "not valid JSON (1e400 is out of range)"}
    assert listed[5] == {
        "file": "inc-05.json",
        "problem": "not valid JSON (text that is not Unicode)",
    }
    assert listed[6]["infected"] == "everything"  # shown as it is: the reader decides
    assert listed[-2] == INCIDENT
    assert listed[-1] == {"file": "inc-\\xff\x1b[2J.json", "problem": "not a document name"}


@pytest.mark.parametrize(
    "when",
    [float("inf"), float("-inf"), float("nan"), 10**400, -1e300, 1e300, "x", None, True],
    ids=["inf", "-inf", "nan", "10**400", "-1e300", "1e300", "text", "null", "true"],
)
def test_a_time_no_clock_can_show_is_a_question_mark(
    when: object, capsys: pytest.CaptureFixture[str]
) -> None:
    print_incident({"id": "inc-1", "time": when})
    assert capsys.readouterr().out.splitlines()[0] == "inc-1  ?  drive (none) (serial (none))"


def test_many_infected_files_are_cut_short(capsys: pytest.CaptureFixture[str]) -> None:
    print_incident({"infected": [{"path": f"f{n}"} for n in range(60)]})
    out = capsys.readouterr().out
    assert "    60 infected files:" in out
    assert "      f49  ((none))" in out
    assert "f50" not in out
    assert "      ... and 10 more" in out
