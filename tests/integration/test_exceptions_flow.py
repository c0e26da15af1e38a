"""The exception workflow end to end: staff request, IT approves with a real GPG key, the daemon
verifies, admits the device, and switches it off again at expiry or revocation."""

from __future__ import annotations

import json
import time
from pathlib import Path

from commands import it_trusted, run
from conftest import GuarddFactory
from exposure_support import CLEAN_FILES, clamd, make_medium, media, writable
from test_signing_support import Homes, homes_fixture

from guardd.exchange.spool import Spool
from guardd.media.blockdev import is_read_only
from signing import Gpg, make_approval, seal
from sim.clamd import ClamdProcess
from sim.daemon import GuarddProcess, wait_for
from sim.media import LoopMedium
from sim.usb import UsbTestbed, stick

NOBODY = 65534


def request(daemon: GuarddProcess, device: str, duration: str = "1d") -> str:
    out = run(
        "guardctl",
        "--socket",
        str(daemon.socket),
        "request",
        device,
        "--reason",
        "governors' papers from the clerk",
        "--for",
        duration,
        "--json",
        uid=NOBODY,
    )
    assert out.returncode == 0, out.stderr
    return str(json.loads(out.stdout)["id"])


def staff_requests(daemon: GuarddProcess) -> list[dict[str, object]]:
    out = run("guardctl", "--socket", str(daemon.socket), "requests", "--json", uid=NOBODY)
    return list(json.loads(out.stdout))


def test_request_approve_admit_then_revoke(
    testbed: UsbTestbed, guardd: GuarddFactory, homes: Homes, world: Path
) -> None:
    daemon = guardd()
    it, fpr = it_trusted(daemon, homes, world)
    path = testbed.plug(stick("CLERK-STICK-1"), port="1")
    daemon.wait_verdict("2-1", "blocked")
    request_id = request(daemon, "2-1")
    listed = run("guard-admin", "--config", str(daemon.config), "requests", "--json")
    [seen] = json.loads(listed.stdout)
    assert (seen["id"], seen["state"], seen["user"]) == (request_id, "pending", "nobody")
    assert seen["device"]["serial"] == "CLERK-STICK-1"
    approved = run(
        "guard-admin", "--config", str(daemon.config), "approve", request_id, gnupghome=it.home
    )
    assert approved.returncode == 0, approved.stderr
    device = daemon.wait_verdict("2-1", "allowed", timeout=20)
    assert str(device["rule"]).startswith("approval:apr-")
    assert "exception approved by IT until" in str(device["reason"])
    wait_for(lambda: testbed.read(path, "authorized").strip() == "1", 5, lambda: "not authorised")
    wait_for(lambda: staff_requests(daemon)[0]["state"] == "approved", 5, lambda: "not approved")
    honoured = [e for e in daemon.events() if e["event"] == "approval.honoured"]
    assert honoured[0]["data"]["by"] == fpr
    # The approval survives a replug and a restart.
    testbed.unplug(path)
    daemon.wait_gone("2-1")
    path = testbed.plug(stick("CLERK-STICK-1"), port="1")
    daemon.wait_verdict("2-1", "allowed", timeout=20)
    daemon.stop()
    daemon.start()
    daemon.wait_verdict("2-1", "allowed", timeout=20)
    # Revoked: switched off again.
    approval_id = str(device["rule"]).removeprefix("approval:")
    revoked = run(
        "guard-admin", "--config", str(daemon.config), "revoke", approval_id, gnupghome=it.home
    )
    assert revoked.returncode == 0, revoked.stderr
    daemon.wait_verdict("2-1", "blocked", timeout=20)
    assert testbed.read(path, "authorized").strip() == "0"
    wait_for(lambda: staff_requests(daemon)[0]["state"] == "revoked", 5, lambda: "not revoked")


def test_approval_ends_at_its_expiry(
    testbed: UsbTestbed, guardd: GuarddFactory, homes: Homes, world: Path
) -> None:
    daemon = guardd()
    it, fpr = it_trusted(daemon, homes, world)
    path = testbed.plug(stick("CLERK-STICK-2"), port="1")
    daemon.wait_verdict("2-1", "blocked")
    request_id = request(daemon, "2-1")
    spool = Spool(daemon.state_dir / "exchange")
    [entry] = [e for e in spool.read_all("requests") if e.name == f"{request_id}.json"]
    assert entry.document is not None
    # A very short approval, made with the same library the admin CLI uses (the CLI's own
    # minimum is 5 minutes).
    doc = make_approval(
        entry.document, approver_fpr=fpr, duration_s=6, read_only=False, now=time.time()
    )
    spool.write("approvals", doc.id, json.loads(seal(doc, Gpg(it.home), fpr)))
    device = daemon.wait_verdict("2-1", "allowed", timeout=20)
    assert "warning" in device  # it ends within 15 minutes: staff are told
    daemon.wait_verdict("2-1", "blocked", timeout=30)
    assert testbed.read(path, "authorized").strip() == "0"
    assert any(e["event"] == "approval.expired" for e in daemon.events())
    wait_for(lambda: staff_requests(daemon)[0]["state"] == "expired", 5, lambda: "not expired")


def test_denial_and_untrusted_signature(
    testbed: UsbTestbed, guardd: GuarddFactory, homes: Homes, world: Path
) -> None:
    daemon = guardd()
    it, _ = it_trusted(daemon, homes, world)
    stranger = homes.keyring()
    stranger_fpr = stranger.new_key("Not IT")
    testbed.plug(stick("CLERK-STICK-3"), port="1")
    testbed.plug(stick("CLERK-STICK-4"), port="2")
    daemon.wait_verdict("2-1", "blocked")
    daemon.wait_verdict("2-2", "blocked")
    forged = request(daemon, "2-1")
    denied = request(daemon, "2-2")
    out = run(
        "guard-admin", "--config", str(daemon.config), "approve", forged, gnupghome=stranger.home
    )
    assert out.returncode == 0, out.stderr  # anyone can write to the exchange...
    out = run(
        "guard-admin",
        "--config",
        str(daemon.config),
        "deny",
        denied,
        "--reason",
        "use the shared drive instead",
        gnupghome=it.home,
    )
    assert out.returncode == 0, out.stderr
    wait_for(
        lambda: any(e["event"] == "decision.refused" for e in daemon.events()),
        20,
        lambda: "not refused",
    )
    refused = next(e for e in daemon.events() if e["event"] == "decision.refused")
    assert "not a trusted approver" in str(refused["data"]["reason"])
    assert stranger_fpr[-16:] in str(refused["data"]["reason"])
    assert (daemon.device("2-1") or {})["verdict"] == "blocked"  # only IT's signature counts
    wait_for(
        lambda: any(r["state"] == "denied" for r in staff_requests(daemon)),
        20,
        lambda: "not denied",
    )
    mine = run("guardctl", "--socket", str(daemon.socket), "requests", uid=NOBODY)
    assert "denied: use the shared drive instead" in mine.stdout


__all__ = ["clamd", "homes_fixture", "media"]  # fixtures, used by name


def test_read_only_approval_keeps_the_drive_read_only_after_its_scan(
    testbed: UsbTestbed,
    guardd: GuarddFactory,
    homes: Homes,
    world: Path,
    clamd: ClamdProcess,
    media: list[LoopMedium],
) -> None:
    daemon = guardd(clamd_socket=clamd.socket)
    it, _ = it_trusted(daemon, homes, world)
    spec = stick("CLERK-LUKS-5", "crypto_LUKS")
    path = testbed.plug(spec, port="1")
    daemon.wait_verdict("2-1", "blocked")
    request_id = request(daemon, "2-1")  # asked read-write...
    out = run(
        "guard-admin",
        "--config",
        str(daemon.config),
        "approve",
        request_id,
        "--read-only",
        gnupghome=it.home,
    )  # ...approved read-only
    assert out.returncode == 0, out.stderr
    daemon.wait_verdict("2-1", "allowed", timeout=20)
    [container] = testbed.add_volumes(path, spec)
    wait_for(lambda: bool((daemon.device("2-1") or {}).get("volumes")), 10, lambda: "no volume")
    medium = make_medium(world, media, CLEAN_FILES)
    testbed.add_mapping("dm-0", container, medium.devnode, medium.numbers, "ext4")
    wait_for(lambda: is_read_only(medium.devnode), 10, lambda: "never held read-only")
    folder = medium.mount(world / "media" / "clerk")
    device = daemon.wait_verdict("2-1", "ready", timeout=30)
    assert str(device["reason"]).endswith("read-only, as IT approved")
    assert not writable(folder)
    assert is_read_only(medium.devnode)
