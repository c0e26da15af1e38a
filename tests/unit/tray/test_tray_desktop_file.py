"""The XDG autostart file that `make install` copies to /etc/xdg/autostart/."""

from __future__ import annotations

import configparser
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
DESKTOP = ROOT / "tray" / "guard-tray.desktop"


def test_the_autostart_file_starts_the_tray_command_in_the_session() -> None:
    entry = configparser.ConfigParser(interpolation=None)
    entry.optionxform = str  # type: ignore[assignment,method-assign]
    entry.read(DESKTOP)
    desktop = entry["Desktop Entry"]
    assert desktop["Type"] == "Application"
    assert desktop["Terminal"] == "false"
    assert desktop["NoDisplay"] == "true"  # started by the session, not a menu entry
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert desktop["Exec"] == "guard-tray"
    assert scripts["guard-tray"] == "tray.main:main"


def test_desktop_file_validate_accepts_it() -> None:
    validator = shutil.which("desktop-file-validate")
    if validator is None:
        pytest.skip("desktop-file-validate is not installed")
    done = subprocess.run([validator, str(DESKTOP)], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
