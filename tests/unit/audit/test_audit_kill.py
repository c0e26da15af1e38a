"""A writer killed with SIGKILL at any moment leaves a log that still verifies."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from guardd.audit import verify

REPO_ROOT = Path(__file__).resolve().parents[3]

WRITER = """
import sys
from pathlib import Path
from guardd.audit import AuditLog

with AuditLog.open(Path(sys.argv[1])) as log:
    n = 0
    while True:
        serial = "SN\\udcff\\n" * (n % 40)
        log.append("device.decision", {"n": n, "serial": serial, "verdict": "blocked"})
        n += 1
        if n == 100:
            print("ready", flush=True)
"""


def run_and_kill(path: Path, delay: float) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    with subprocess.Popen(
        [sys.executable, "-c", WRITER, str(path)], env=env, stdout=subprocess.PIPE
    ) as proc:
        assert proc.stdout is not None
        assert proc.stdout.readline() == b"ready\n"
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(timeout=30) == -signal.SIGKILL


def test_log_survives_kill_9(tmp_path: Path) -> None:
    path = tmp_path / "audit.log"
    seen = 0
    for delay in (0.0, 0.003, 0.011, 0.027, 0.05):
        run_and_kill(path, delay)
        result = verify(path)
        assert result.ok, result.problem
        assert result.records >= seen + 100
        seen = result.records
    # Every restart resumed the chain cleanly: nothing was torn, so nothing was reported.
    events = {json.loads(line)["event"] for line in path.read_bytes().splitlines()}
    assert events == {"device.decision"}
