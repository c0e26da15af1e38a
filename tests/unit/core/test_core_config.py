"""load_config: the daemon's own TOML settings, and every way a config file can be wrong."""

from __future__ import annotations

from pathlib import Path

import pytest

from guardd.config import MAX_CONFIG_BYTES, DaemonConfig, load_config
from guardd.errors import ErrorCode, GuarddError

VALID = 'rules = "/etc/guardd/rules.d"\nstate_dir = "/var/lib/guardd"\nsocket = "/run/g.sock"\n'


def write(tmp_path: Path, text: str | bytes, name: str = "guardd.toml") -> Path:
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, str):
        path.write_text(text, encoding="utf-8")
    else:
        path.write_bytes(text)
    return path


def refused(path: Path) -> str:
    """The one-line message load_config gives for a bad file (checked to be INVALID_CONFIG)."""
    with pytest.raises(GuarddError) as caught:
        load_config(path)
    assert caught.value.code is ErrorCode.INVALID_CONFIG
    message = caught.value.message
    assert "\n" not in message
    assert message.startswith(f"{path}: ")
    assert str(caught.value) == message
    return message[len(f"{path}: ") :]


# --- valid files ---------------------------------------------------------------------------


def test_valid_config_with_absolute_paths(tmp_path: Path) -> None:
    path = write(tmp_path, VALID)
    config = load_config(path)
    assert config == DaemonConfig(
        source=path,
        rules=Path("/etc/guardd/rules.d"),
        state_dir=Path("/var/lib/guardd"),
        socket=Path("/run/g.sock"),
        admin_uids=frozenset({0}),
    )
    assert config.audit_log == Path("/var/lib/guardd/audit.jsonl")
    assert config.database == Path("/var/lib/guardd/guardd.db")


def test_relative_paths_are_resolved_against_the_config_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(
        tmp_path,
        'rules = "rules.d"\nstate_dir = "../state"\nsocket = "./run/../run/g.sock"\n',
        name="etc/guardd.toml",
    )
    monkeypatch.chdir("/")  # not the config's folder: the cwd must not matter
    config = load_config(path)
    assert config.rules == (tmp_path / "etc" / "rules.d").resolve()
    assert config.state_dir == (tmp_path / "state").resolve()
    assert config.socket == (tmp_path / "etc" / "run" / "g.sock").resolve()
    assert config.rules.is_absolute()


def test_relative_config_path_still_gives_absolute_paths(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(tmp_path, 'rules = "r"\nstate_dir = "s"\nsocket = "k"\n')
    monkeypatch.chdir(tmp_path)
    config = load_config(Path("guardd.toml"))
    assert config.rules == (tmp_path / "r").resolve()
    assert config.state_dir.is_absolute()


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("[]", frozenset()),
        ("[1000, 1001, 1000]", frozenset({1000, 1001})),
        ("[0, 4294967295]", frozenset({0, 2**32 - 1})),
    ],
)
def test_admin_uids_accepted(tmp_path: Path, value: str, expected: frozenset[int]) -> None:
    config = load_config(write(tmp_path, VALID + f"admin_uids = {value}\n"))
    assert config.admin_uids == expected


def test_a_file_of_exactly_the_size_limit_is_read(tmp_path: Path) -> None:
    body = VALID.encode()
    padding = b"#" + b"x" * (MAX_CONFIG_BYTES - len(body) - 2) + b"\n"
    path = write(tmp_path, body + padding)
    assert path.stat().st_size == MAX_CONFIG_BYTES
    assert load_config(path).socket == Path("/run/g.sock")


# --- refusals ------------------------------------------------------------------------------


def test_unknown_key_is_refused_and_named(tmp_path: Path) -> None:
    message = refused(write(tmp_path, VALID + 'sockett = "/tmp/x"\nadmin_uid = [0]\n'))
    # The first unknown key in sorted order, and the keys that are known.
    assert message == (
        "unknown key 'admin_uid' (known: rules, state_dir, socket, admin_uids, clamd_socket, "
        "exchange_dir, scan_workers, machine_id, trusted_keys, watch_homes)"
    )


def test_unknown_table_is_refused(tmp_path: Path) -> None:
    message = refused(write(tmp_path, VALID + "[extra]\nx = 1\n"))
    assert message.startswith("unknown key 'extra'")


def test_unknown_key_with_a_newline_in_its_name_stays_one_line(tmp_path: Path) -> None:
    message = refused(write(tmp_path, VALID + '"evil\\nkey" = 1\n'))
    assert message.startswith("unknown key 'evil\\nkey'")


@pytest.mark.parametrize("key", ["rules", "state_dir", "socket"])
def test_missing_key_is_refused(tmp_path: Path, key: str) -> None:
    text = "".join(line + "\n" for line in VALID.splitlines() if not line.startswith(key))
    assert refused(write(tmp_path, text)) == f"missing key {key!r}"


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("rules", "5"),
        ("rules", '""'),
        ("rules", '["/etc/guardd/rules.d"]'),
        ("state_dir", "true"),
        ("state_dir", "{ path = '/var' }"),
        ("socket", '"/run/g\\u0000.sock"'),
        ("socket", "1979-05-27"),
    ],
)
def test_wrong_path_type_is_refused(tmp_path: Path, key: str, value: str) -> None:
    lines = [f"{key} = {value}" if line.startswith(key) else line for line in VALID.splitlines()]
    message = refused(write(tmp_path, "\n".join(lines) + "\n"))
    assert message == f"{key!r} must be a non-empty path string"


@pytest.mark.parametrize(
    "value", ["0", '"0"', "[true]", "[-1]", "[4294967296]", "[1.0]", '["root"]', "[[0]]", "{}"]
)
def test_bad_admin_uids_are_refused(tmp_path: Path, value: str) -> None:
    message = refused(write(tmp_path, VALID + f"admin_uids = {value}\n"))
    assert message == "'admin_uids' must be a list of user ids"


def test_not_utf8_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, VALID.encode() + b"# caf\xe9\n")
    assert refused(path) == "not UTF-8 text"


def test_too_large_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, VALID.encode() + b"#" + b"x" * MAX_CONFIG_BYTES + b"\n")
    assert refused(path) == "file is too large to be a config file"


@pytest.mark.parametrize(
    "text", ["rules = ", 'rules = "unterminated\n', "[[[", 'rules = "a"\nrules = "b"\n']
)
def test_bad_toml_is_refused(tmp_path: Path, text: str) -> None:
    assert refused(write(tmp_path, text)).startswith("not valid TOML: ")


def test_missing_file_is_refused(tmp_path: Path) -> None:
    message = refused(tmp_path / "absent.toml")
    assert message == "cannot read: No such file or directory"


def test_a_folder_is_refused(tmp_path: Path) -> None:
    (tmp_path / "conf").mkdir()
    assert refused(tmp_path / "conf") == "cannot read: Is a directory"


def test_deeply_nested_toml_is_refused(tmp_path: Path) -> None:
    depth = 20_000
    path = write(tmp_path, VALID + "x = " + "[" * depth + "]" * depth + "\n")
    assert refused(path).startswith("not valid TOML")


def test_watch_homes_defaults_to_home_and_is_checked(tmp_path: Path) -> None:
    assert load_config(write(tmp_path, VALID)).watch_homes == (Path("/home"),)
    config = load_config(write(tmp_path, VALID + 'watch_homes = ["/srv/homes", "staff"]\n'))
    assert config.watch_homes == (Path("/srv/homes"), (tmp_path / "staff").resolve())
    assert load_config(write(tmp_path, VALID + "watch_homes = []\n")).watch_homes == ()
    assert "'watch_homes' must be a list" in refused(write(tmp_path, VALID + 'watch_homes = "/"\n'))
    assert "cannot be the root folder" in refused(write(tmp_path, VALID + 'watch_homes = ["/"]\n'))
