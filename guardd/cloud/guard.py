"""The cloud-sync guard: sync folders found in the homes, judged, and blocked or let be.

Runs on the daemon's loop (the crawl on a worker thread). For every folder it looks at, it
opens the folder by descriptor under its watch root, gathers the facts, asks rules/ what it
is and whether it is allowed, then has the Blocker record and lock it, or restore it exactly
when it is allowed now (a rule, or an approval from IT bound to this very folder).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from guardd.audit import AuditLog, JsonValue
from guardd.cloud.beneath import BeneathError, open_dir
from guardd.cloud.blocker import Blocker
from guardd.cloud.crawl import CrawlCounts, Seen, crawl
from guardd.cloud.facts import folder_facts, home_facts, look, marker_keeper
from guardd.cloud.folder import CloudFolder, FolderState, found_from_json
from guardd.cloud.roots import Place, Roots
from guardd.cloud.unmount import detach
from guardd.exceptions.approvals import Honoured
from guardd.media.mounts import Mount, read_mounts
from guardd.store.cloud import BlockRow, CloudBlocks
from rules import (
    Found,
    HomeFacts,
    RuleSet,
    Signatures,
    found_in_folder,
    found_in_home,
    judge_folder,
)

log = logging.getLogger(__name__)

# (what was found, the folder's device and inode, or 0, 0 for a mount) -> approval in force
ApprovalFor = Callable[[Found, int, int], Honoured | None]
Change = tuple[str, bool]  # (path, is a folder)


@dataclass
class CrawlResult:
    """What a crawl found (on a worker thread; applied on the loop)."""

    paths: list[str] = field(default_factory=list)
    counts: CrawlCounts = field(default_factory=CrawlCounts)
    seconds: float = 0.0


class CloudGuard:
    """Every sync folder guardd knows about, and the blocks it holds."""

    def __init__(  # noqa: PLR0913  (the composition root hands each collaborator in)
        self,
        *,
        roots: Roots,
        blocks: CloudBlocks,
        audit: AuditLog,
        rules: RuleSet,
        machine_id: str,
        approval: ApprovalFor,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.roots = roots
        self._blocker = Blocker(blocks, audit, clock)
        self._audit = audit
        self._rules = rules
        self._machine_id = machine_id
        self._approval = approval
        self._folders: dict[str, CloudFolder] = {}
        self._homes: dict[tuple[str, str], HomeFacts] = {}
        self._mounts: list[Mount] | None = None  # read again when the mount table changes

    @property
    def _sigs(self) -> Signatures:
        return self._rules.signatures

    # -- what staff and IT see -------------------------------------------------------------

    def folders(self, uid: int | None = None) -> list[dict[str, JsonValue]]:
        """Every sync folder (or one user's), as the CLIs and the tray show them."""
        shown = sorted(self._folders.values(), key=lambda f: f.found.path)
        return [f.view() for f in shown if uid is None or f.owner_uid == uid]

    def find(self, path: str) -> CloudFolder | None:
        """The sync folder at `path`, if guardd knows one there."""
        return self._folders.get(os.path.normpath(path)) if path.startswith("/") else None

    # -- crawls ------------------------------------------------------------------------------

    def crawl(self) -> CrawlResult:
        """Walk every home for sync folders. Worker thread: reads only, touches no state."""
        started = time.perf_counter()
        result = CrawlResult()
        mounts = read_mounts()
        sigs = self._sigs
        keep = marker_keeper(sigs)
        for root, fd in list(self.roots.fds.items()):
            home: HomeFacts | None = None
            for seen in crawl(fd, result.counts, keep):
                if "/" not in seen.relative:
                    home = home_facts(fd, root, seen.relative, sigs, mounts)
                    result.paths.extend(f.path for f in found_in_home(home, sigs))
                elif home is not None and seen.entries:
                    facts = folder_facts(root, seen, seen.uid)
                    if found_in_folder(facts, home, sigs) is not None:
                        result.paths.append(facts.path)
        result.seconds = time.perf_counter() - started
        return result

    def crawled(self, result: CrawlResult, quiet: bool = False) -> None:
        """Judge what a crawl found, and every block recorded before (loop). A `quiet`
        (periodic) crawl is audited only when it found a folder guardd did not know."""
        known = set(self._folders)
        for row in self._blocker.blocks.all():
            self._safely(row.path)
        for path in dict.fromkeys(result.paths):
            self._safely(path)
        counts = result.counts
        for home in counts.unguarded_homes:
            self._audit.append("cloud.home_not_guarded", {"home": home, "reason": "a symlink"})
        new = len(set(self._folders) - known)
        if quiet and not new:
            return
        self._audit.append(
            "cloud.crawled",
            {
                "roots": list(self.roots.fds),
                "folders": counts.folders,
                "files": counts.files,
                "skipped": counts.skipped,
                "seconds": round(result.seconds, 3),
                "sync_folders": len(self._folders),
                "new": new,
            },
        )

    # -- changes ---------------------------------------------------------------------------

    def changed(self, changes: set[Change]) -> None:
        """Paths changed in the homes (watchdog, debounced): look again only where it can
        matter: a new or moved folder, a marker's name, a client's config, a known folder."""
        folders: set[str] = set()
        homes: set[tuple[str, str]] = set()
        for raw, is_folder in changes:
            path = os.path.normpath(raw)
            place = self.roots.locate(path)
            if place is None or not place.home:
                continue
            if self._touches_config(place.in_home):
                homes.add((place.root, place.home))
            if is_folder or path in self._folders:
                folders.add(path)
            if self._sigs.marker_entries(frozenset([os.path.basename(path)])):
                folders.add(os.path.dirname(path))
        for root, home in homes:
            self._homes.pop((root, home), None)
            folders.update(f.path for f in found_in_home(self._home(root, home), self._sigs))
        for folder in sorted(folders):
            self._safely(folder)

    def _touches_config(self, in_home: str) -> bool:
        if not in_home:
            return False
        watched = self._sigs.home_files() | self._sigs.home_dirs()
        return any(w == in_home or w.startswith(f"{in_home}/") for w in watched)

    def mounts_changed(self) -> None:
        """The mount table changed: a sync client may have mounted (rclone, pCloud)."""
        self._homes.clear()
        self._mounts = None
        for mount in self._mount_table():
            if self._sigs.mount_provider(mount.fstype) is not None:
                self._safely(mount.mountpoint)

    def rejudge(self, rules: RuleSet | None = None) -> int:
        """Judge every known folder again (new rules, or an approval began or ended)."""
        if rules is not None:
            self._rules = rules
            self._homes.clear()
        before = {p: f.state for p, f in self._folders.items()}
        for path in list(self._folders):
            self._safely(path)
        return sum(1 for p, f in self._folders.items() if before.get(p) != f.state)

    # -- one folder --------------------------------------------------------------------------

    def _safely(self, path: str) -> None:
        """Look at one folder; whatever goes wrong there is recorded and the others go on."""
        try:
            self.look_at(path)
        except Exception as e:
            log.exception("could not look at %r", path)
            self._audit.append("cloud.look_failed", {"path": path, "error": str(e)[:200]})

    def look_at(self, path: str) -> None:
        """Open the folder at `path`, find out whether it is a sync folder, and settle it."""
        place = self.roots.locate(path)
        if place is None or len(place.parts) < 2:  # a home itself is never blocked
            return
        hint = None
        mount = self._mount_at(os.path.normpath(path))
        if mount is not None:
            hint = self._sync_mount(place, mount)
            if hint is None:
                return
        try:
            fd = open_dir(place.fd, place.relative)
        except (OSError, BeneathError):
            self._gone(os.path.normpath(path))
            return
        try:
            self._settle_open(place, fd, hint)
        finally:
            os.close(fd)

    def _settle_open(self, place: Place, fd: int, hint: Found | None) -> None:
        st = os.fstat(fd)
        row = self._blocker.blocks.by_inode(st.st_dev, st.st_ino)
        owner = _recorded_owner(row, st.st_uid)
        seen = look(fd, place.relative, marker_keeper(self._sigs), owner)
        home = self._home(place.root, place.home)
        facts = folder_facts(place.root, seen, owner)
        found = (
            hint or found_in_folder(facts, home, self._sigs) or _named(home, facts.path, self._sigs)
        )
        if found is None and row is not None:
            found = found_from_json({**row.found, "path": facts.path})
        if found is None:
            self._gone(facts.path)
            return
        self._settle(place, fd, seen, found, owner, row)

    def _settle(
        self, place: Place, fd: int, seen: Seen, found: Found, owner: int, row: BlockRow | None
    ) -> None:
        allowed = self._allowed(found, seen.dev, seen.ino)
        if allowed is not None:
            problem = self._blocker.unblock(fd, found, row, owner) if row is not None else ""
            folder = replace(allowed, owner_uid=owner, problem=problem)
        else:
            verdict = judge_folder(found, self._rules, self._machine_id)
            problem = self._blocker.block(place, fd, seen, found, row)
            state = FolderState.FAILED if problem else FolderState.BLOCKED
            folder = CloudFolder(found, owner, state, verdict.rule, verdict.reason, None, problem)
        self._record(replace(folder, dev=seen.dev, ino=seen.ino))

    def _allowed(self, found: Found, dev: int, ino: int) -> CloudFolder | None:
        """What an allow rule or an approval in force says of this folder (owner and
        problem filled in by the caller), or None when it must be blocked."""
        verdict = judge_folder(found, self._rules, self._machine_id)
        if verdict.allowed:
            return CloudFolder(found, -1, FolderState.ALLOWED, verdict.rule, verdict.reason)
        approval = self._approval(found, dev, ino)
        if approval is None:
            return None
        until = float(approval.document.not_after or 0)
        return CloudFolder(
            found,
            -1,
            FolderState.APPROVED,
            f"approval:{approval.document.id}",
            f"allowed: exception approved by IT until {_when(until)}",
            until,
        )

    def _home(self, root: str, home: str) -> HomeFacts:
        key = (root, home)
        cached = self._homes.get(key)
        if cached is None:
            mounts = self._mount_table()
            cached = home_facts(self.roots.fds[root], root, home, self._sigs, mounts)
            self._homes[key] = cached
        return cached

    # -- sync mounts -------------------------------------------------------------------------

    def _mount_table(self) -> list[Mount]:
        if self._mounts is None:
            self._mounts = read_mounts()
        return self._mounts

    def _mount_at(self, path: str) -> Mount | None:
        """The sync client's mount exactly at `path`, if there is one."""
        sigs = self._sigs
        mounts = self._mount_table()
        return next(
            (m for m in mounts if m.mountpoint == path and sigs.mount_provider(m.fstype)), None
        )

    def _sync_mount(self, place: Place, mount: Mount) -> Found | None:
        """A sync client's FUSE mount: judged as it stands; when it must be blocked, detached
        so the folder under it can be blocked (the Found to block it as), else None."""
        home = self._home(place.root, place.home)
        found = _named(home, mount.mountpoint, self._sigs)
        if found is None:
            return None
        allowed = self._allowed(found, 0, 0)
        if allowed is not None:
            self._record(replace(allowed, owner_uid=home.owner_uid))
            return None
        try:
            detach(place.fd, place.relative, mount.mount_id)
        except (OSError, BeneathError) as e:
            verdict = judge_folder(found, self._rules, self._machine_id)
            problem = f"could not unmount it: {getattr(e, 'strerror', None) or e}"
            state = FolderState.FAILED
            self._record(
                CloudFolder(
                    found, home.owner_uid, state, verdict.rule, verdict.reason, None, problem
                )
            )
            return None
        self._homes.pop((place.root, place.home), None)
        self._mounts = None
        data: dict[str, JsonValue] = {"path": found.path, "provider": found.provider}
        self._audit.append(
            "cloud.unmounted", {**data, "fstype": mount.fstype, "uid": home.owner_uid}
        )
        return found

    # -- the record of what guardd knows -----------------------------------------------------

    def _record(self, folder: CloudFolder) -> None:
        previous = self._folders.get(folder.found.path)
        self._folders[folder.found.path] = folder
        if previous is not None and (previous.state, previous.rule) == (folder.state, folder.rule):
            return
        event = {
            FolderState.BLOCKED: "cloud.blocked",
            FolderState.ALLOWED: "cloud.allowed",
            FolderState.APPROVED: "cloud.approved",
            FolderState.FAILED: "cloud.block_failed",
        }[folder.state]
        view = folder.view()
        data: dict[str, JsonValue] = {k: view[k] for k in ("path", "provider", "rule", "reason")}
        data.update(uid=folder.owner_uid, evidence=folder.found.evidence)
        if folder.problem:
            data["problem"] = folder.problem
        self._audit.append(event, data)
        if folder.state in (FolderState.BLOCKED, FolderState.FAILED):
            log.warning("%r: %s", folder.found.path, folder.problem or folder.reason)

    def _gone(self, path: str) -> None:
        gone = self._folders.pop(path, None)
        if gone is not None:
            self._audit.append(
                "cloud.gone",
                {"path": path, "provider": gone.found.provider, "uid": gone.owner_uid},
            )


def _recorded_owner(row: BlockRow | None, current: int) -> int:
    uid = row.recorded.get("uid") if row is not None else None
    return uid if type(uid) is int else current


def _named(home: HomeFacts, path: str, sigs: Signatures) -> Found | None:
    """A folder no marker gives away, but a sync client's config names (OneDrive's sync_dir)."""
    return next((f for f in found_in_home(home, sigs) if f.path == path), None)


def _when(epoch: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(epoch))
