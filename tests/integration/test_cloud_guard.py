"""The cloud-sync guard end to end: a real guardd, real inotify, real files in temporary homes."""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
from pathlib import Path

from cloud_support import (
    LOCKED,
    OTHER,
    STAFF,
    cloud,
    fingerprint,
    folder_state,
    make_home,
    make_tree,
    wait_state,
)
from commands import run
from conftest import ENROLLED, GuarddFactory

from guardd.media.mounts import read_mounts
from sim.env import real_env


def test_a_dropbox_folder_made_while_guardd_runs_is_blocked_and_nothing_in_it_changes(
    guardd: GuarddFactory, world: Path
) -> None:
    homes = world / "homes"
    home = make_home(homes)
    daemon = guardd(homes=[homes])
    folder = home / "Dropbox"
    folder.mkdir()
    os.chown(folder, STAFF, STAFF)
    make_tree(folder)
    before_files, before_folder = fingerprint(folder), folder_state(folder)
    for marker in (".dropbox", ".dropbox.cache"):
        (folder / marker).mkdir() if marker.endswith("cache") else (folder / marker).touch()
    after_markers = fingerprint(folder)
    shown = wait_state(daemon, folder, "blocked")
    assert shown["provider"] == "dropbox"
    assert shown["owner_uid"] == STAFF
    assert "Dropbox folder blocked" in shown["reason"]
    assert "ask IT for an exception" in shown["reason"]
    assert folder_state(folder) == LOCKED
    assert fingerprint(folder) == after_markers  # files, modes, owners and bytes untouched
    assert {k: v for k, v in after_markers.items() if k in before_files} == before_files
    assert before_folder == (0o755, STAFF, STAFF)


def test_a_folder_named_dropbox_without_markers_is_not_a_sync_folder(
    guardd: GuarddFactory, world: Path
) -> None:
    homes = world / "homes"
    home = make_home(homes)
    plain = home / "Dropbox"
    make_tree(plain)
    daemon = guardd(homes=[homes])
    real = home / "Work" / "Syncthing share"
    make_tree(real, markers=(".stfolder",))
    wait_state(daemon, real, "blocked")  # nested, made while running: seen
    assert str(plain) not in cloud(daemon)
    assert folder_state(plain) == (0o755, STAFF, STAFF)


def test_sync_folders_present_before_start_are_found_by_the_crawl(
    guardd: GuarddFactory, world: Path
) -> None:
    homes = world / "homes"
    home = make_home(homes)
    folders = {
        home / "Nextcloud": (".sync_4f2a.db",),
        home / "MEGA": (".debris",),
        home / "Documents" / "deep" / "Shared": (".stfolder",),
        home / "pCloudDrive": (),
    }
    for folder, markers in folders.items():
        make_tree(folder, markers=markers)
    daemon = guardd(homes=[homes])
    for folder in folders:
        wait_state(daemon, folder, "blocked")
        assert folder_state(folder) == LOCKED
    crawled = [e for e in daemon.events() if e["event"] == "cloud.crawled"]
    assert crawled
    assert crawled[0]["data"]["folders"] >= len(folders)


def test_a_sync_folder_made_by_another_user_is_theirs_to_see(
    guardd: GuarddFactory, world: Path
) -> None:
    homes = world / "homes"
    home = make_home(homes)
    shared = home / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    daemon = guardd(homes=[homes])
    folder = shared / "Dropbox"
    make_tree(folder, uid=OTHER, markers=(".dropbox", ".dropbox.cache"))
    shown = wait_state(daemon, folder, "blocked")
    assert shown["owner_uid"] == OTHER
    mine = run("guardctl", "--socket", str(daemon.socket), "cloud", "--json", uid=STAFF)
    assert mine.returncode == 0, mine.stderr
    assert str(folder) not in {f["path"] for f in json.loads(mine.stdout)}
    theirs = run("guardctl", "--socket", str(daemon.socket), "cloud", "--json", uid=OTHER)
    assert [f["path"] for f in json.loads(theirs.stdout)] == [str(folder)]


def test_a_block_survives_a_restart_and_an_allow_rule_restores_it_exactly(
    guardd: GuarddFactory, world: Path
) -> None:
    homes = world / "homes"
    home = make_home(homes)
    folder = home / "Dropbox"
    make_tree(folder, markers=(".dropbox", ".dropbox.cache"))
    folder.chmod(0o2750)  # setgid, as some shared setups use
    os.setxattr(folder, "user.note", b"kept")  # not an ACL: left alone
    before = folder_state(folder), fingerprint(folder)
    daemon = guardd(homes=[homes])
    wait_state(daemon, folder, "blocked")
    daemon.stop()
    assert folder_state(folder) == LOCKED  # stopping guardd does not open it
    daemon.start()
    wait_state(daemon, folder, "blocked")
    daemon.rules_path.write_text(ENROLLED + '\n[[cloud]]\nprovider = "dropbox"\n')
    daemon.reload()
    shown = wait_state(daemon, folder, "allowed")
    assert shown["rule"] != "default"
    assert (folder_state(folder), fingerprint(folder)) == before
    assert os.getxattr(folder, "user.note") == b"kept"
    wanted = {"cloud.blocked", "cloud.unblocked", "cloud.allowed"}
    assert wanted <= {e["event"] for e in daemon.events()}


NEXTCLOUD_CFG = """[General]
clientVersion=3.8.1

[Accounts]
0\\url=https://cloud.school.example/
0\\Folders\\1\\localPath={school}/
1\\url=https://my-own-cloud.example.com
1\\Folders\\1\\localPath={personal}/
"""


def test_the_schools_nextcloud_is_allowed_while_another_server_is_blocked(
    guardd: GuarddFactory, world: Path
) -> None:
    homes = world / "homes"
    home = make_home(homes)
    school, personal = home / "School Nextcloud", home / "Nextcloud"
    for folder in (school, personal):
        make_tree(folder, markers=(".sync_0a1b2c.db",))
    config = home / ".config" / "Nextcloud"
    config.mkdir(parents=True)
    (config / "nextcloud.cfg").write_text(NEXTCLOUD_CFG.format(school=school, personal=personal))
    rule = '\n[[cloud]]\nid = "school-cloud"\nprovider = "nextcloud"\n'
    rule += 'server = "https://cloud.school.example"\n'
    daemon = guardd(ENROLLED + rule, homes=[homes])
    allowed = wait_state(daemon, school, "allowed")
    assert allowed["rule"] == "school-cloud"
    assert allowed["server"] == "https://cloud.school.example"
    blocked = wait_state(daemon, personal, "blocked")
    assert blocked["server"] == "https://my-own-cloud.example.com"
    assert folder_state(school) == (0o755, STAFF, STAFF)
    assert folder_state(personal) == LOCKED


def test_a_folder_swapped_for_a_symlink_never_redirects_the_block(
    guardd: GuarddFactory, world: Path
) -> None:
    homes = world / "homes"
    home = make_home(homes)
    outside = world / "outside"
    outside.mkdir()
    outside.chmod(0o755)
    (outside / "passwd").write_text("root:x:0:0")
    before = folder_state(outside), fingerprint(outside)
    daemon = guardd(homes=[homes])
    folder, aside = home / "Dropbox", home / "aside"
    make_tree(folder, markers=(".dropbox", ".dropbox.cache"))
    stop = threading.Event()
    changed: list[tuple[int, int, int]] = []

    def swap() -> None:
        while not stop.is_set():
            folder.rename(aside)
            folder.symlink_to(outside)
            folder.unlink()
            aside.rename(folder)

    def watch() -> None:
        while not stop.is_set():
            if folder_state(outside) != before[0]:
                changed.append(folder_state(outside))

    threads = [threading.Thread(target=swap), threading.Thread(target=watch)]
    for thread in threads:
        thread.start()
    time.sleep(2.0)  # let the guard race the swaps for a while (not a timing assertion)
    stop.set()
    for thread in threads:
        thread.join()
    assert changed == []
    assert (folder_state(outside), fingerprint(outside)) == before
    raced = [e["event"] for e in daemon.events() if e["event"].startswith("cloud.")]
    assert "cloud.gone" in raced or "cloud.moved_away" in raced  # guardd did race the swaps
    # The last rename put the real folder back: guardd sees it and blocks it.
    wait_state(daemon, folder, "blocked")
    assert folder_state(folder) == LOCKED
    assert (folder_state(outside), fingerprint(outside)) == before


def test_an_rclone_mount_in_a_home_is_unmounted_and_its_folder_blocked(
    guardd: GuarddFactory, world: Path
) -> None:
    homes = world / "homes"
    home = make_home(homes)
    remote = world / "remote"
    remote.mkdir()
    (remote / "lesson plans.odt").write_bytes(b"PK\x03\x04 plans")
    before = fingerprint(remote)
    mountpoint = home / "cloud"
    mountpoint.mkdir()
    os.chown(mountpoint, STAFF, STAFF)
    daemon = guardd(homes=[homes])
    # In the foreground, as a sync client runs: `--daemon` would wait for a mount guardd
    # may already have detached.
    client = subprocess.Popen(
        ["rclone", "mount", f":local:{remote}", str(mountpoint), "--config", "/dev/null"],
        env=real_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        shown = wait_state(daemon, mountpoint, "blocked")
    finally:
        client.terminate()
        client.wait(timeout=30)
    assert shown["provider"] == "rclone"
    assert "fuse.rclone" in shown["evidence"]
    assert not any(m.mountpoint == str(mountpoint) for m in read_mounts())
    assert folder_state(mountpoint) == LOCKED
    assert fingerprint(remote) == before  # the remote's files are untouched
    unmounted = [e for e in daemon.events() if e["event"] == "cloud.unmounted"]
    assert unmounted[0]["data"]["fstype"] == "fuse.rclone"
