"""Cloud-sync exceptions end to end: staff ask with guardctl, IT approve with a real GPG key,
guardd verifies the signed approval, restores the folder exactly, and blocks it at expiry."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from cloud_support import LOCKED, STAFF, folder_state, make_home, make_tree, wait_state
from commands import it_trusted, run
from conftest import GuarddFactory
from test_signing_support import Homes, homes_fixture

from guardd.exchange.spool import Spool
from signing import Gpg, make_approval, seal
from sim.daemon import GuarddProcess, wait_for

homes = homes_fixture


def blocked_dropbox(guardd: GuarddFactory, world: Path) -> tuple[GuarddProcess, Path]:
    root = world / "homes"
    folder = make_home(root) / "Dropbox"
    make_tree(folder, markers=(".dropbox", ".dropbox.cache"))
    daemon = guardd(homes=[root])
    wait_state(daemon, folder, "blocked")
    return daemon, folder


def request_cloud(daemon: GuarddProcess, folder: Path) -> str:
    made = run(
        "guardctl",
        "--socket",
        str(daemon.socket),
        "request-cloud",
        str(folder),
        "--reason",
        "sharing the play's scripts with the drama club",
        "--json",
        uid=STAFF,
    )
    assert made.returncode == 0, made.stderr
    return str(json.loads(made.stdout)["id"])


def test_request_approve_restores_the_folder_exactly(
    guardd: GuarddFactory, homes: Homes, world: Path
) -> None:
    daemon, folder = blocked_dropbox(guardd, world)
    it, fpr = it_trusted(daemon, homes, world)
    request_id = request_cloud(daemon, folder)
    listed = run("guard-admin", "--config", str(daemon.config), "requests", "--json")
    [seen] = json.loads(listed.stdout)
    st = folder.stat()
    assert seen["folder"] == {
        "path": str(folder),
        "provider": "dropbox",
        "name": "Dropbox",
        "account": "",
        "server": "",
        "dev": st.st_dev,  # bound to this very folder
        "ino": st.st_ino,
    }
    assert "device" not in seen
    approved = run(
        "guard-admin", "--config", str(daemon.config), "approve", request_id, gnupghome=it.home
    )
    assert approved.returncode == 0, approved.stderr
    shown = wait_state(daemon, folder, "approved", timeout=20)
    assert "exception approved by IT until" in shown["reason"]
    assert folder_state(folder) == (0o755, STAFF, STAFF)
    mine = run("guardctl", "--socket", str(daemon.socket), "requests", "--json", uid=STAFF)
    assert json.loads(mine.stdout)[0]["state"] == "approved"
    text = run("guardctl", "--socket", str(daemon.socket), "cloud", uid=STAFF).stdout
    assert "allowed by an exception until" in text
    events = {e["event"] for e in daemon.events()}
    assert {"request.created", "approval.honoured", "cloud.approved", "cloud.unblocked"} <= events
    honoured = next(e for e in daemon.events() if e["event"] == "approval.honoured")
    assert honoured["data"]["by"] == fpr


def test_an_approval_for_another_folder_or_a_device_request_is_refused(
    guardd: GuarddFactory, world: Path
) -> None:
    daemon, folder = blocked_dropbox(guardd, world)
    other = run(
        "guardctl",
        "--socket",
        str(daemon.socket),
        "request-cloud",
        str(folder.parent / "NotAFolder"),
        "--reason",
        "because",
        uid=STAFF,
    )
    assert other.returncode != 0
    assert "no such cloud folder" in other.stderr
    assert "Traceback" not in other.stderr
    not_mine = run(
        "guardctl",
        "--socket",
        str(daemon.socket),
        "request-cloud",
        str(folder),
        "--reason",
        "I am somebody else",
        uid=STAFF - 1,
    )
    assert not_mine.returncode != 0
    assert "no such cloud folder" in not_mine.stderr


def test_the_folder_is_blocked_again_when_the_approval_ends(
    guardd: GuarddFactory, homes: Homes, world: Path
) -> None:
    daemon, folder = blocked_dropbox(guardd, world)
    it, fpr = it_trusted(daemon, homes, world)
    request_id = request_cloud(daemon, folder)
    spool = Spool(daemon.state_dir / "exchange")
    [entry] = [e for e in spool.read_all("requests") if e.name == f"{request_id}.json"]
    assert entry.document is not None
    doc = make_approval(
        entry.document, approver_fpr=fpr, duration_s=8, read_only=False, now=time.time()
    )
    assert doc.folder is not None
    assert doc.version == 2
    spool.write("approvals", doc.id, json.loads(seal(doc, Gpg(it.home), fpr)))
    wait_state(daemon, folder, "approved", timeout=20)
    assert folder_state(folder) == (0o755, STAFF, STAFF)
    wait_state(daemon, folder, "blocked", timeout=30)
    assert folder_state(folder) == LOCKED
    wait_for(
        lambda: any(e["event"] == "approval.expired" for e in daemon.events()),
        5,
        lambda: "no approval.expired record",
    )
    assert os.stat(folder).st_uid == 0
