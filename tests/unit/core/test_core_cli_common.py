"""What both CLIs share: safe display of device strings, the device listing, and exit codes."""

from __future__ import annotations

from typing import Any

import pytest

from guardd.cli.common import (
    EXIT_FAILED,
    EXIT_NOT_PERMITTED,
    EXIT_OK,
    EXIT_UNAVAILABLE,
    EXIT_USAGE,
    describe,
    devices_list,
    print_devices,
    run,
    safe,
)
from guardd.errors import ErrorCode, GuarddError

STICK: dict[str, Any] = {
    "id": "2-1",
    "kind": "storage",
    "manufacturer": "SanDisk",
    "product": "Cruzer",
    "serial": "1234",
    "vendor_id": "0781",
    "product_id": "5567",
    "rule": "default:not-enrolled",
    "reason": "blocked: this drive was not issued by the school",
    "volumes": [],
}

# --- safe ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (None, "(none)"),
        ("", "(none)"),
        ("SanDisk", "SanDisk"),
        ("Café ü", "Café ü"),
        (0, "0"),
        ("\x1b[2J\x1b[31mred", "\\x1b[2J\\x1b[31mred"),
        ("a\nb\rc\td", "a\\x0ab\\x0dc\\x09d"),
        ("\x7f\x9b", "\\x7f\\x9b"),
        ("evil\u202etxt.exe", "evil\\x202etxt.exe"),  # a bidi override is not printable
    ],
)
def test_safe(text: object, expected: str) -> None:
    assert safe(text) == expected


def test_safe_is_capped() -> None:
    assert safe("x" * 64) == "x" * 64
    assert safe("x" * 65) == "x" * 63 + "…"
    assert safe("x" * 500, 10) == "x" * 9 + "…"
    # Escaping counts towards the cap: a string of control characters cannot grow unbounded.
    assert len(safe("\x1b" * 100)) == 64


# --- describe / print_devices ------------------------------------------------------------------


def test_describe_a_stick() -> None:
    assert describe(STICK) == 'USB drive "SanDisk Cruzer" (serial 1234), id 2-1'


@pytest.mark.parametrize(
    ("kind", "words"),
    [
        ("storage", "USB drive"),
        ("composite", "USB device with storage"),
        ("hid", "keyboard or mouse"),
        ("hub", "USB hub"),
        ("other", "USB device"),
        ("toaster", "USB device"),
        (None, "USB device"),
    ],
)
def test_describe_kind_words(kind: str | None, words: str) -> None:
    assert describe({**STICK, "kind": kind}).startswith(f'{words} "SanDisk Cruzer"')


def test_describe_without_names_or_serial() -> None:
    device = {"id": "1-4", "kind": "hid", "manufacturer": "", "product": None, "serial": None}
    assert describe(device) == "keyboard or mouse (serial (none)), id 1-4"
    assert describe({**device, "product": "Keyboard"}) == (
        'keyboard or mouse "Keyboard" (serial (none)), id 1-4'
    )


def test_describe_escapes_what_the_device_chose() -> None:
    device = {**STICK, "manufacturer": "\x1b]0;owned\x07", "serial": "S\nFAKE", "id": "2-1" * 10}
    line = describe(device)
    assert "\x1b" not in line
    assert "\n" not in line
    assert line == (
        'USB drive "\\x1b]0;owned\\x07 Cruzer" (serial S\\x0aFAKE), id 2-12-12-12-12-1…'
    )


def test_print_no_devices(capsys: pytest.CaptureFixture[str]) -> None:
    print_devices([], with_rule=True)
    assert capsys.readouterr().out == "No USB devices are connected.\n"


def test_print_devices(capsys: pytest.CaptureFixture[str]) -> None:
    keyboard = {
        "id": "1-4",
        "kind": "hid",
        "manufacturer": "Logitech",
        "product": "K120",
        "serial": None,
        "reason": "allowed: keyboard or mouse (not a storage device)",
    }
    stick = {
        **STICK,
        "volumes": [{"name": "sda1", "fs_type": "vfat", "reason": "blocked: not encrypted"}],
    }
    print_devices([stick, keyboard], with_rule=False)
    assert capsys.readouterr().out == (
        'USB drive "SanDisk Cruzer" (serial 1234), id 2-1\n'
        "    blocked: this drive was not issued by the school\n"
        "    volume sda1 (vfat): blocked: not encrypted\n"
        'keyboard or mouse "Logitech K120" (serial (none)), id 1-4\n'
        "    allowed: keyboard or mouse (not a storage device)\n"
    )


def test_print_devices_with_rule(capsys: pytest.CaptureFixture[str]) -> None:
    print_devices([{**STICK, "reason": "bad\x1b[2Kreason"}], with_rule=True)
    assert capsys.readouterr().out == (
        'USB drive "SanDisk Cruzer" (serial 1234), id 2-1\n'
        "    bad\\x1b[2Kreason\n"
        "    rule default:not-enrolled; usb id 0781:5567\n"
    )


@pytest.mark.parametrize("answer", [None, {"id": "2-1"}, [{"id": "2-1"}, "x"], "[]"])
def test_devices_list_refuses_odd_answers(answer: object) -> None:
    with pytest.raises(GuarddError) as caught:
        devices_list(answer)
    assert caught.value.code is ErrorCode.INTERNAL


def test_devices_list_passes_a_list_of_objects() -> None:
    assert devices_list([STICK]) == [STICK]
    assert devices_list([]) == []


# --- run ---------------------------------------------------------------------------------------


def test_run_returns_the_body_exit_code(capsys: pytest.CaptureFixture[str]) -> None:
    assert run("guardctl", lambda: EXIT_OK) == 0
    assert run("guardctl", lambda: 7) == 7
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize(
    ("code", "exit_code"),
    [
        (ErrorCode.UNAVAILABLE, 3),
        (ErrorCode.NOT_PERMITTED, 4),
        (ErrorCode.INVALID_CONFIG, 2),
        (ErrorCode.INVALID_ARGUMENT, 2),
        (ErrorCode.INTERNAL, 1),
        (ErrorCode.INVALID_RULES, 1),
        (ErrorCode.NOT_FOUND, 1),
        (ErrorCode.TOO_LARGE, 1),
        (ErrorCode.UNKNOWN_REQUEST, 1),
        (ErrorCode.UNSUPPORTED_VERSION, 1),
        (ErrorCode.INVALID_REQUEST, 1),
    ],
)
def test_run_maps_error_codes_to_exit_codes(
    capsys: pytest.CaptureFixture[str], code: ErrorCode, exit_code: int
) -> None:
    def body() -> int:
        raise GuarddError(code, "something is wrong")

    assert run("guard-admin", body) == exit_code
    captured = capsys.readouterr()
    assert captured.err == "guard-admin: something is wrong\n"
    assert captured.out == ""


def test_exit_code_constants() -> None:
    assert (EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_UNAVAILABLE, EXIT_NOT_PERMITTED) == (
        0,
        1,
        2,
        3,
        4,
    )


def test_run_interrupted_and_broken_pipe(capsys: pytest.CaptureFixture[str]) -> None:
    def interrupted() -> int:
        raise KeyboardInterrupt

    def piped() -> int:
        raise BrokenPipeError

    assert run("guardctl", interrupted) == 130
    assert run("guardctl", piped) == 0
    assert capsys.readouterr().err == ""


def test_run_lets_bugs_through() -> None:
    def buggy() -> int:
        raise RuntimeError("a bug is not an expected failure")

    with pytest.raises(RuntimeError):
        run("guardctl", buggy)
