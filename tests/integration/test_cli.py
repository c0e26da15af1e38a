"""The two CLIs and the socket, as staff and IT use them, against a real guardd."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

from conftest import ENROLLED, GuarddFactory

from sim.daemon import GuarddProcess, wait_for
from sim.usb import KEYBOARD, UsbTestbed, stick

BIN = Path(sys.executable).parent
NOBODY = 65534


def cli(
    *args: str, env: dict[str, str] | None = None, uid: int | None = None
) -> subprocess.CompletedProcess[str]:
    command = [str(BIN / args[0]), *args[1:]]
    if uid is not None:
        command = ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", *command]
    return subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=60,
        env=env or dict(os.environ),
        check=False,
    )


def run_daemon(config: Path, testbed: UsbTestbed) -> subprocess.CompletedProcess[str]:
    """guardd in the foreground, for the cases where it must refuse to start."""
    return subprocess.run(
        [sys.executable, "-m", "guardd.daemon", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=dict(os.environ, UMOCKDEV_DIR=testbed.root),
    )


def plugged(testbed: UsbTestbed, daemon: GuarddProcess) -> None:
    testbed.plug(stick("SCHOOL-000123"), port="1")
    testbed.plug(stick("NOT-OURS"), port="2")
    testbed.plug(KEYBOARD, port="3")
    daemon.wait_verdict("2-1", "allowed")
    daemon.wait_verdict("2-2", "blocked")
    daemon.wait_verdict("2-3", "allowed")


def test_guardctl_devices_json_has_the_contract_fields(
    testbed: UsbTestbed, guardd: GuarddFactory
) -> None:
    daemon = guardd()
    plugged(testbed, daemon)
    out = cli("guardctl", "--socket", str(daemon.socket), "devices", "--json")
    assert out.returncode == 0, out.stderr
    devices = {d["id"]: d for d in json.loads(out.stdout)}
    for device in devices.values():
        assert {
            "id",
            "serial",
            "vendor_id",
            "product_id",
            "kind",
            "verdict",
            "reason",
            "rule",
        } <= set(device)
    assert devices["2-1"]["verdict"] == "allowed"
    assert devices["2-1"]["serial"] == "SCHOOL-000123"
    assert (devices["2-1"]["vendor_id"], devices["2-1"]["product_id"]) == ("46f4", "0001")
    assert devices["2-2"]["reason"] == "blocked: this drive was not issued by the school"
    assert devices["2-3"]["kind"] == "hid"


def test_guardctl_plain_english_and_env_socket(testbed: UsbTestbed, guardd: GuarddFactory) -> None:
    daemon = guardd()
    plugged(testbed, daemon)
    env = dict(os.environ, GUARDD_SOCKET=str(daemon.socket))
    out = cli("guardctl", "devices", env=env, uid=NOBODY)
    assert out.returncode == 0, out.stderr
    assert "allowed: enrolled as 'Office stick 12'" in out.stdout
    assert "blocked: this drive was not issued by the school" in out.stdout
    assert "keyboard or mouse" in out.stdout


def test_guard_admin_devices_shows_rules(testbed: UsbTestbed, guardd: GuarddFactory) -> None:
    daemon = guardd()
    plugged(testbed, daemon)
    out = cli("guard-admin", "--socket", str(daemon.socket), "devices")
    assert out.returncode == 0, out.stderr
    assert "rule default:not-enrolled" in out.stdout
    as_json = cli("guard-admin", "--config", str(daemon.config), "devices", "--json")
    assert {d["id"] for d in json.loads(as_json.stdout)} == {"2-1", "2-2", "2-3"}


def test_cli_without_daemon_says_so_in_one_line(tmp_path: Path) -> None:
    out = cli("guardctl", "--socket", str(tmp_path / "none.sock"), "devices")
    assert out.returncode == 3
    assert out.stderr.count("\n") == 1
    assert "guardd is not running" in out.stderr
    assert "Traceback" not in out.stderr


def test_admin_requests_refused_for_staff(testbed: UsbTestbed, guardd: GuarddFactory) -> None:
    daemon = guardd()
    out = cli("guard-admin", "--socket", str(daemon.socket), "reload", uid=NOBODY)
    assert out.returncode == 4
    assert "only IT administrators" in out.stderr
    assert cli("guard-admin", "--socket", str(daemon.socket), "reload").returncode == 0


def test_rules_check(tmp_path: Path) -> None:
    good = tmp_path / "good.toml"
    good.write_text(ENROLLED)
    out = cli("guard-admin", "rules", "check", str(good))
    assert out.returncode == 0, out.stdout
    bad = tmp_path / "bad.toml"
    bad.write_text('[[drive]]\nserial = "X"\nvendor_id = "zz"\nproduct_id = "0001"\ncolour = 1\n')
    out = cli("guard-admin", "rules", "check", str(bad))
    assert out.returncode == 1
    lines = out.stdout.splitlines()
    assert f"{bad}:3: " in out.stdout  # the vendor id's line
    assert any(line.startswith(f"{bad}:5: ") for line in lines)  # the unknown key's line
    assert "Traceback" not in out.stdout + out.stderr


def test_audit_verify_intact_then_edit_caught(testbed: UsbTestbed, guardd: GuarddFactory) -> None:
    daemon = guardd()
    plugged(testbed, daemon)
    out = cli("guard-admin", "--config", str(daemon.config), "audit", "verify")
    assert out.returncode == 0, out.stdout
    assert "intact" in out.stdout
    daemon.stop()
    log = daemon.state_dir / "audit.jsonl"
    lines = log.read_text().splitlines()
    target = next(i for i, x in enumerate(lines) if '"NOT-OURS"' in x and "device.decision" in x)
    lines[target] = lines[target].replace('"blocked"', '"allowed"', 1)
    log.write_text("\n".join(lines) + "\n")
    out = cli("guard-admin", "--config", str(daemon.config), "audit", "verify", "--json")
    assert out.returncode == 1
    result = json.loads(out.stdout)
    assert result["ok"] is False
    assert result["first_bad_line"] == target + 1


def test_audit_verify_catches_removed_record(testbed: UsbTestbed, guardd: GuarddFactory) -> None:
    daemon = guardd()
    plugged(testbed, daemon)
    daemon.stop()
    log = daemon.state_dir / "audit.jsonl"
    lines = log.read_text().splitlines()
    del lines[3]
    log.write_text("\n".join(lines) + "\n")
    out = cli("guard-admin", "--config", str(daemon.config), "audit", "verify")
    assert out.returncode == 1
    assert "line 4" in out.stdout


def test_daemon_refuses_broken_rules(testbed: UsbTestbed, tmp_path: Path) -> None:
    daemon = GuarddProcess(tmp_path / "g", testbed.root, '[[drive]]\nserial = "X"\n')
    out = run_daemon(daemon.config, testbed)
    assert out.returncode == 2
    assert "refusing to start: the rules are broken" in out.stderr
    assert f"{daemon.rules_path}:1:" in out.stderr
    assert "Traceback" not in out.stderr


def test_unknown_config_key_is_an_error(tmp_path: Path) -> None:
    config = tmp_path / "guardd.toml"
    config.write_text('rules = "r"\nstate_dir = "s"\nsocket = "x.sock"\nsokcet = "typo"\n')
    out = cli("guardd", "--config", str(config))
    assert out.returncode == 2
    assert "unknown key 'sokcet'" in out.stderr
    assert "Traceback" not in out.stderr


def test_broken_reload_keeps_last_good_rules(testbed: UsbTestbed, guardd: GuarddFactory) -> None:
    daemon = guardd()
    testbed.plug(stick("SCHOOL-000123"), port="1")
    daemon.wait_verdict("2-1", "allowed")
    daemon.rules_path.write_text("[[drive]]\nserial = \n")
    out = cli("guard-admin", "--socket", str(daemon.socket), "reload")
    assert out.returncode == 1
    assert "NOT reloaded" in out.stdout
    assert daemon.device("2-1")["verdict"] == "allowed"  # type: ignore[index]
    events = [
        json.loads(x)["event"] for x in (daemon.state_dir / "audit.jsonl").read_text().splitlines()
    ]
    assert "rules.reload_failed" in events
    # A good reload that removes the drive switches it off at once.
    daemon.rules_path.write_text("[policy]\nrequire_encryption = true\n")
    assert cli("guard-admin", "--socket", str(daemon.socket), "reload").returncode == 0
    assert daemon.device("2-1")["verdict"] == "blocked"  # type: ignore[index]
    assert testbed.read(testbed.device_path(2, "1"), "authorized").strip() == "0"


def raw_exchange(path: Path, payload: bytes) -> bytes:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(10)
        sock.connect(str(path))
        sock.sendall(payload)
        sock.shutdown(socket.SHUT_WR)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
        return data


def test_malformed_messages_are_refused_and_daemon_lives(
    testbed: UsbTestbed, guardd: GuarddFactory
) -> None:
    daemon = guardd()
    cases = {
        b"not json\n": "invalid-request",
        b"[1,2]\n": "invalid-request",
        b'{"v": 99, "op": "devices"}\n': "unsupported-version",
        b'{"v": 1, "op": "format-disk"}\n': "unknown-request",
        b'{"v": 1, "op": "devices", "args": []}\n': "invalid-request",
        b"\xff\xfe\n": "invalid-request",
        b"[" * 50000 + b"\n": "invalid-request",
        b"x" * 200_000 + b"\n": "too-large",
    }
    for payload, code in cases.items():
        answer = json.loads(raw_exchange(daemon.socket, payload).splitlines()[0])
        assert answer["ok"] is False
        assert answer["error"]["code"] == code, payload[:40]
    testbed.plug(stick("SCHOOL-000123"), port="1")
    daemon.wait_verdict("2-1", "allowed")


def test_socket_peer_identity_comes_from_the_kernel(
    testbed: UsbTestbed, guardd: GuarddFactory
) -> None:
    daemon = guardd()
    env = dict(os.environ, GUARDD_SOCKET=str(daemon.socket))
    out = cli("guardctl", "status", env=env, uid=NOBODY)
    assert out.returncode == 0, out.stderr
    assert "you are nobody (staff)" in out.stdout
    wait_for(
        lambda: "IT administrator" in cli("guardctl", "status", env=env).stdout,
        5,
        lambda: "root not admin",
    )


def test_second_daemon_on_same_state_refuses(testbed: UsbTestbed, guardd: GuarddFactory) -> None:
    daemon = guardd()
    out = run_daemon(daemon.config, testbed)
    assert out.returncode == 2
    assert "another guardd is already running" in out.stderr
    assert cli("guard-admin", "--config", str(daemon.config), "audit", "verify").returncode == 0
    assert daemon.devices() == []


def test_drives_enroll_list_remove_reach_the_daemon(
    testbed: UsbTestbed, guardd: GuarddFactory
) -> None:
    daemon = guardd()
    testbed.plug(stick("NEW-STAFF-STICK"), port="1")
    daemon.wait_verdict("2-1", "blocked")
    config = ("guard-admin", "--config", str(daemon.config))
    out = cli(
        *config,
        "drives",
        "enroll",
        "--serial",
        "NEW-STAFF-STICK",
        "--vendor-id",
        "46F4",
        "--product-id",
        "0001",
        "--label",
        'Ms "O\'Brien"s stick',
    )
    assert out.returncode == 0, out.stderr
    assert "guardd reloaded its rules" in out.stdout
    assert daemon.wait_verdict("2-1", "allowed")["label"] == 'Ms "O\'Brien"s stick'
    listed = json.loads(cli(*config, "drives", "list", "--json").stdout)
    assert any(d["serial"] == "NEW-STAFF-STICK" and d["vendor_id"] == "46f4" for d in listed)
    # A duplicate is refused as a whole-rule-set problem, and nothing is written.
    before = daemon.rules_path.read_text()
    dup = cli(
        *config,
        "drives",
        "enroll",
        "--serial",
        "NEW-STAFF-STICK",
        "--vendor-id",
        "46f4",
        "--product-id",
        "0001",
    )
    assert dup.returncode == 2
    assert "duplicate" in dup.stderr.lower()
    assert daemon.rules_path.read_text() == before
    out = cli(*config, "drives", "remove", "NEW-STAFF-STICK")
    assert out.returncode == 0, out.stderr
    daemon.wait_verdict("2-1", "blocked")
    assert cli(*config, "rules", "check", str(daemon.rules_path)).returncode == 0
    assert cli(*config, "drives", "remove", "NOT-THERE").returncode == 1
