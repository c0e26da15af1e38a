"""List 10,000 pending requests with the admin CLI, as IT would on a busy exchange."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from guardd.exchange.spool import Spool

REQUESTS = 10_000
RUNS = 3


def _exchange(root: Path) -> Path:
    """A config and an exchange holding REQUESTS pending requests."""
    spool = Spool(root / "exchange", create_root=True)
    for i in range(REQUESTS):
        request_id = f"req-20261122-{i:06d}-abcdef{i % 100:02d}"
        spool.write(
            "requests",
            request_id,
            {
                "format": "guardd-request/1",
                "id": request_id,
                "uid": 1000 + i % 300,
                "user": f"staff{i % 300}",
                "machine_id": f"machine-{i % 700:03d}",
                "device": {
                    "id": "2-1",
                    "serial": f"STICK-{i:06d}",
                    "vendor_id": "0781",
                    "product_id": "5581",
                },
                "reason": "governors' papers from the clerk",
                "duration_s": 172800,
                "read_only": i % 2 == 0,
                "created": 1795331102.0 + i,
            },
        )
    (root / "rules.toml").write_text("[policy]\nrequire_encryption = true\n")
    config = root / "guardd.toml"
    config.write_text(
        f'rules = "{root / "rules.toml"}"\nstate_dir = "{root / "state"}"\n'
        f'socket = "{root / "g.sock"}"\nexchange_dir = "{root / "exchange"}"\n'
    )
    return config


def run() -> dict[str, object]:
    """Seconds for `guard-admin requests --json` over REQUESTS pending requests (best of RUNS)."""
    admin = str(Path(sys.executable).parent / "guard-admin")
    with tempfile.TemporaryDirectory(prefix="guardd-bench-req-") as tmp:
        config = _exchange(Path(tmp))
        times = []
        for _ in range(RUNS):
            start = time.perf_counter()
            out = subprocess.run(
                [admin, "--config", str(config), "requests", "--json"],
                capture_output=True,
                text=True,
                check=True,
                timeout=300,
            )
            times.append(time.perf_counter() - start)
        listed = len(json.loads(out.stdout))
    return {
        "pending_requests": REQUESTS,
        "listed": listed,
        "cli_seconds_best": round(min(times), 3),
        "cli_seconds_all": [round(t, 3) for t in times],
        "target_seconds_for_1000": 1.0,
    }
