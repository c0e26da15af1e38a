"""Hostile homes: what a member of staff could try against the cloud-sync guard (each case
found by a security review of guardd, each now refused)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from cloud_support import (
    LOCKED,
    OTHER,
    STAFF,
    cloud,
    folder_state,
    make_home,
    make_tree,
    wait_state,
)
from commands import it_trusted, run
from conftest import ENROLLED, GuarddFactory
from test_signing_support import Homes, homes_fixture

from guardd.media.mounts import read_mounts
from sim.daemon import wait_for
from sim.env import real_env

homes = homes_fixture
ALLOW_SYNCTHING = ENROLLED + '\n[[cloud]]\nprovider = "syncthing"\n'


def test_a_renamed_blocked_folder_keeps_its_original_record(
    guardd: GuarddFactory, world: Path
) -> None:
    root = world / "homes"
    home = make_home(root)
    sync = home / "Sync"
    make_tree(sync, markers=(".stfolder",))
    daemon = guardd(homes=[root])
    wait_state(daemon, sync, "blocked")
    # In one go: rename the blocked folder and make a new one under its old name.
    renamed = home / "x"
    sync.rename(renamed)
    sync.mkdir()
    (sync / ".stfolder").touch()
    wait_state(daemon, renamed, "blocked")
    wait_state(daemon, sync, "blocked")
    daemon.rules_path.write_text(ALLOW_SYNCTHING)
    daemon.reload()
    wait_state(daemon, renamed, "allowed")
    wait_state(daemon, sync, "allowed")
    assert folder_state(renamed) == (0o755, STAFF, STAFF)  # its own original, not 000 root
    assert folder_state(sync) == (0o755, 0, 0)  # made by root here: back as it was


def test_an_approval_does_not_follow_a_path_to_another_folder(
    guardd: GuarddFactory, homes: Homes, world: Path
) -> None:
    root = world / "homes"
    home = make_home(root)
    approved, personal = home / "Dropbox", home / "Personal"
    for folder in (approved, personal):
        make_tree(folder, markers=(".dropbox", ".dropbox.cache"))
    daemon = guardd(homes=[root])
    it, _ = it_trusted(daemon, homes, world)
    wait_state(daemon, approved, "blocked")
    wait_state(daemon, personal, "blocked")
    made = run(
        "guardctl", "--socket", str(daemon.socket), "request-cloud", str(approved),
        "--reason", "the school's shared Dropbox", "--json", uid=STAFF,
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    request_id = json.loads(made.stdout)["id"]
    ok = run(
        "guard-admin", "--config", str(daemon.config), "approve", request_id, gnupghome=it.home
    )
    assert ok.returncode == 0, ok.stderr
    wait_state(daemon, approved, "approved", timeout=20)
    approved.rename(home / "Old")
    personal.rename(approved)  # the personal folder takes the approved one's name
    wait_state(daemon, approved, "blocked")
    assert folder_state(approved) == LOCKED


def test_markers_hidden_among_many_names_deep_down_or_beside_odd_names_are_found(
    guardd: GuarddFactory, world: Path
) -> None:
    root = world / "homes"
    home = make_home(root)
    daemon = guardd(homes=[root])
    crowded = home / "crowded"
    crowded.mkdir()
    for i in range(5000):
        (crowded / f"-{i:05d}").touch()
    (crowded / ".stfolder").touch()
    deep = home.joinpath(*["d"] * 300) / "Sync"
    deep.mkdir(parents=True)
    (deep / ".stfolder").touch()
    odd = Path(os.fsdecode(bytes(home) + b"/Sync\xff"))
    odd.mkdir()
    (odd / ".stfolder").touch()
    plain = home / "Plain Sync"
    plain.mkdir()
    (plain / ".stfolder").touch()
    for folder in (crowded, deep, odd, plain):
        wait_state(daemon, folder, "blocked", timeout=20)
        assert folder_state(folder) == LOCKED


def test_someone_elses_marker_does_not_lock_the_owner_out(
    guardd: GuarddFactory, world: Path
) -> None:
    root = world / "homes"
    home = make_home(root)
    shared = home / "Class"
    shared.mkdir()
    os.chown(shared, STAFF, STAFF)
    shared.chmod(0o777)
    daemon = guardd(homes=[root])
    marker = shared / ".stfolder"
    marker.touch()
    os.chown(marker, OTHER, OTHER)  # planted by another user
    sentinel = home / "Sentinel"
    make_tree(sentinel, markers=(".stfolder",))
    wait_state(daemon, sentinel, "blocked")
    assert str(shared) not in cloud(daemon)
    assert folder_state(shared) == (0o777, STAFF, STAFF)


def test_a_stale_mount_path_through_a_symlink_never_unmounts_outside_the_homes(
    guardd: GuarddFactory, world: Path
) -> None:
    root = world / "homes"
    home = make_home(root)
    remote, decoy = world / "remote", world / "decoy"
    (decoy / "victim").mkdir(parents=True)
    remote.mkdir()
    victim = home / "x" / "victim"
    victim.mkdir(parents=True)
    allow = ENROLLED + '\n[[cloud]]\nprovider = "rclone"\n'
    subprocess.run(["mount", "-t", "tmpfs", "decoy", str(decoy / "victim")], check=True)
    daemon = guardd(allow, homes=[root])
    client = subprocess.Popen(
        ["rclone", "mount", f":local:{remote}", str(victim), "--config", "/dev/null"],
        env=real_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_state(daemon, victim, "allowed")
        (home / "x").rename(home / "y")  # no mount event: guardd's table still says x/victim
        (home / "x").symlink_to(decoy)
        daemon.rules_path.write_text(ENROLLED)
        daemon.reload()
        wait_for(
            lambda: any(f["state"] != "allowed" for f in cloud(daemon).values()),
            10,
            lambda: f"the rclone mount is still allowed: {cloud(daemon)}",
        )
        # The real mount (now at y/victim) was dealt with; the decoy outside never was.
        assert any(m.mountpoint == str(decoy / "victim") for m in read_mounts())
        assert (decoy / "victim").is_dir()
    finally:
        subprocess.run(["umount", "-l", str(decoy / "victim")], check=False)
        client.terminate()
        client.wait(timeout=30)


def test_a_symlink_in_place_of_a_home_is_reported(guardd: GuarddFactory, world: Path) -> None:
    root = world / "homes"
    make_home(root)
    elsewhere = world / "elsewhere"
    elsewhere.mkdir()
    (root / "linked").symlink_to(elsewhere)
    daemon = guardd(homes=[root])

    def reported() -> list[dict[str, object]]:
        return [e for e in daemon.events() if e["event"] == "cloud.home_not_guarded"]

    wait_for(lambda: bool(reported()), 10, lambda: "the symlinked home was not reported")
    assert reported()[0]["data"] == {"home": "linked", "reason": "a symlink"}
