"""Verify 1,000 signed approvals: what honouring one costs the daemon.

One throw-away IT key (ed25519, TESTING.md's recipe) signs 1,000 approvals once, in parallel
(their making is not what is measured); then one warm Verifier (a dedicated home built by
trust.build_home, reused for every file, as the daemon does) verifies each envelope and checks
its binding. Each verification runs gpg once (about 7 ms of it is gpg's own start-up).
"""

from __future__ import annotations

import shutil
import statistics
import subprocess
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import gnupg

from bench.stats import percentile
from signing import (
    DeviceRef,
    Gpg,
    Verifier,
    add_key,
    build_home,
    canonical,
    check_binding,
    make_approval,
    write_envelope,
)

APPROVALS = 1000
SIGNING_THREADS = 8
MACHINE = "0f3c9a7d2b8e4c1f9a6d3e2b1c0f9e8d"


def _request(i: int) -> dict[str, object]:
    return {
        "id": f"req-bench-{i:06d}",
        "machine_id": MACHINE,
        "user": "alice",
        "uid": 1001,
        "device": {"serial": f"SCHOOL-{i:06d}", "vendor_id": "0781", "product_id": "5581"},
    }


def _new_key(home: Path) -> str:
    gpg = gnupg.GPG(gnupghome=str(home))
    key_input = gpg.gen_key_input(
        key_type="EDDSA",
        key_curve="ed25519",
        key_usage="sign",
        no_protection=True,
        name_real="Bench approver",
        name_email="bench@school.example",
    )
    return str(gpg.gen_key(key_input).fingerprint)


def _make_envelopes(it: Gpg, fpr: str, now: float) -> list[bytes]:
    docs = [
        make_approval(_request(i), approver_fpr=fpr, duration_s=86400, read_only=True, now=now)
        for i in range(APPROVALS)
    ]

    def seal_one(data: bytes) -> bytes:
        return write_envelope(data, it.sign_detached(data, fpr))

    with ThreadPoolExecutor(SIGNING_THREADS) as pool:
        return list(pool.map(seal_one, (canonical(doc) for doc in docs)))


def _ms(samples_s: list[float]) -> dict[str, float]:
    ms = [s * 1e3 for s in samples_s]
    return {
        "n": len(ms),
        "mean_ms": round(statistics.fmean(ms), 3),
        "p50_ms": round(statistics.median(ms), 3),
        "p99_ms": round(percentile(ms, 99), 3),
        "max_ms": round(max(ms), 3),
    }


def run() -> dict[str, object]:
    """Total and per-approval time to verify (and bind) 1,000 approvals."""
    base = Path(tempfile.mkdtemp(prefix="gb-", dir="/tmp"))  # short: agent socket paths
    it_home = base / "it"
    it_home.mkdir(mode=0o700)
    try:
        fpr = _new_key(it_home)
        keys = base / "keys"
        add_key(keys, Gpg(it_home).export_key(fpr))
        home = base / "verify"
        pinned = build_home(keys, home)
        now = time.time()
        started = time.perf_counter()
        envelopes = _make_envelopes(Gpg(it_home), fpr, now)
        make_s = time.perf_counter() - started

        verifier = Verifier(home, pinned)
        verifier.verify(envelopes[0])  # warm: page cache, trustdb created
        samples = []
        started = time.perf_counter()
        for i, raw in enumerate(envelopes):
            t0 = time.perf_counter()
            doc = verifier.verify(raw)
            check_binding(
                doc,
                machine_id=MACHINE,
                user="alice",
                uid=1001,
                subject=DeviceRef(f"SCHOOL-{i:06d}", "0781", "5581"),
                now=now,
                skew_s=300,
                revoked_ids=frozenset(),
                request_known=True,
                request_answered_by=None,
            )
            samples.append(time.perf_counter() - t0)
        total_s = time.perf_counter() - started
    finally:
        subprocess.run(
            ["gpgconf", "--homedir", str(it_home), "--kill", "all"],
            capture_output=True,
            check=False,
        )
        shutil.rmtree(base, ignore_errors=True)
    return {
        "approvals": APPROVALS,
        "make_envelopes_s": round(make_s, 2),
        "verify_total_s": round(total_s, 2),
        "verify_per_approval_ms": round(total_s * 1e3 / APPROVALS, 3),
        "verify": _ms(samples),
    }


if __name__ == "__main__":
    import json

    print(json.dumps(run(), indent=2))
