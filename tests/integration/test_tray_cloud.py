"""The tray's side of the cloud-sync guard, against a real guardd (no display needed): what it
reads, the menu it builds, and the request its dialog sends for a blocked folder."""

from __future__ import annotations

import json
from pathlib import Path

from cloud_support import make_home, make_tree, wait_state
from commands import run
from conftest import GuarddFactory

from guardd.ipc.protocol import Op
from tray.form import ExceptionForm, request_args
from tray.link import snapshot
from tray.menu import build_menu, targets


def test_the_tray_shows_a_blocked_folder_and_asks_for_it(
    guardd: GuarddFactory, world: Path
) -> None:
    root = world / "homes"
    home = make_home(root, "head", uid=0)  # the test's own user owns it, as staff would
    folder = home / "Dropbox"
    make_tree(folder, uid=0, markers=(".dropbox", ".dropbox.cache"))
    daemon = guardd(homes=[root])
    wait_state(daemon, folder, "blocked")
    state = snapshot(daemon.client)
    assert state.folders is not None
    [shown] = state.folders
    assert (shown.path, shown.provider, shown.name, shown.state) == (
        str(folder),
        "Dropbox",
        "Dropbox",
        "blocked",
    )
    labels = [entry.label for entry in build_menu(state)]
    line = "Dropbox folder Dropbox: blocked: Dropbox folder blocked: personal cloud storage"
    assert any(label.startswith(line) for label in labels)
    [target] = [t for t in targets(state) if t.kind == "folder"]
    form = ExceptionForm("the governors' shared folder", "1d", read_only=False)
    made = daemon.client.call(Op.REQUEST, request_args(target, form))  # as the dialog sends it
    assert isinstance(made, dict)
    listed = run("guard-admin", "--config", str(daemon.config), "requests", "--json")
    [request] = json.loads(listed.stdout)
    assert request["id"] == made["id"]
    assert request["folder"]["path"] == str(folder)
    assert request["reason"] == "the governors' shared folder"
