"""The cloud-sync guard: sync folders found in the homes, judged, and blocked or let be.

Runs on the daemon's loop (the crawl at start on a worker thread). For every folder it
looks at, it opens the folder by descriptor under its watch root, gathers the facts, asks
rules/ what it is and whether it is allowed, then records and blocks it, or restores it
exactly when it is allowed now (a rule, or an approval from IT). See guardd.cloud.lock for
what "blocked" means.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from guardd.audit import AuditLog, JsonValue
from guardd.cloud import lock
from guardd.cloud.beneath import BeneathError, open_dir
from guardd.cloud.crawl import CrawlCounts, Seen, crawl
from guardd.cloud.facts import folder_facts, home_facts, look
from guardd.cloud.folder import CloudFolder, FolderState, found_from_json, found_json
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

ApprovalFor = Callable[[str, str], Honoured | None]


@dataclass
class CrawlResult:
    """What the start-up crawl found (on a worker thread; applied on the loop)."""

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
        self._blocks = blocks
        self._audit = audit
        self._rules = rules
        self._machine_id = machine_id
        self._approval = approval
        self._clock = clock
        self._folders: dict[str, CloudFolder] = {}
        self._homes: dict[tuple[str, str], HomeFacts] = {}
        self._mounts: list[Mount] | None = None  # read again when the mount table changes

    # -- what staff and IT see -------------------------------------------------------------

    def folders(self, uid: int | None = None) -> list[dict[str, JsonValue]]:
        """Every sync folder (or one user's), as the CLIs and the tray show them."""
        shown = sorted(self._folders.values(), key=lambda f: f.found.path)
        return [f.view() for f in shown if uid is None or f.owner_uid == uid]

    def find(self, path: str) -> CloudFolder | None:
        """The sync folder at `path`, if guardd knows one there."""
        return self._folders.get(os.path.normpath(path)) if path.startswith("/") else None

    # -- the crawl at start ------------------------------------------------------------------

    def crawl(self) -> CrawlResult:
        """Walk every home for sync folders. Worker thread: reads only, touches no state."""
        started = time.perf_counter()
        result = CrawlResult()
        mounts = read_mounts()
        sigs = self._rules.signatures
        for root, fd in list(self.roots.fds.items()):
            home: HomeFacts | None = None
            for seen in crawl(fd, result.counts):
                if "/" not in seen.relative:
                    home = home_facts(fd, root, seen.relative, sigs, mounts)
                    result.paths.extend(f.path for f in found_in_home(home, sigs))
                    continue
                if home is not None and self._is_sync(root, seen, home):
                    result.paths.append(f"{root.rstrip('/')}/{seen.relative}")
        result.seconds = time.perf_counter() - started
        return result

    def _is_sync(self, root: str, seen: Seen, home: HomeFacts) -> bool:
        facts = folder_facts(root, seen, seen.uid)
        return found_in_folder(facts, home, self._rules.signatures) is not None

    def crawled(self, result: CrawlResult) -> None:
        """Judge what the crawl found, and every block recorded before (loop)."""
        for row in self._blocks.all():
            self.look_at(row.path)
        for path in dict.fromkeys(result.paths):
            self.look_at(path)
        counts = result.counts
        self._audit.append(
            "cloud.crawled",
            {
                "roots": list(self.roots.fds),
                "folders": counts.folders,
                "files": counts.files,
                "skipped": counts.skipped,
                "seconds": round(result.seconds, 3),
                "sync_folders": len(self._folders),
            },
        )

    # -- changes ---------------------------------------------------------------------------

    def changed(self, paths: set[str]) -> None:
        """Paths changed in the homes (watchdog, debounced): look again where it matters."""
        folders: set[str] = set()
        homes: set[tuple[str, str]] = set()
        for path in paths:
            place = self.roots.locate(path)
            if place is None or not place.home:
                continue
            if self._touches_config(place.in_home):
                homes.add((place.root, place.home))
            if place.in_home:
                folders.add(os.path.normpath(path))
                folders.add(os.path.dirname(os.path.normpath(path)))
        for root, home in homes:
            self._homes.pop((root, home), None)
            folders.update(f.path for f in found_in_home(self._home(root, home), self._sigs))
        for folder in sorted(folders):
            self.look_at(folder)

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
                self.look_at(mount.mountpoint)

    def rejudge(self, rules: RuleSet | None = None) -> int:
        """Judge every known folder again (new rules, or an approval began or ended)."""
        if rules is not None:
            self._rules = rules
            self._homes.clear()
        before = {p: f.state for p, f in self._folders.items()}
        for path in list(self._folders):
            self.look_at(path)
        return sum(1 for p, f in self._folders.items() if before.get(p) != f.state)

    # -- one folder --------------------------------------------------------------------------

    @property
    def _sigs(self) -> Signatures:
        return self._rules.signatures

    def look_at(self, path: str) -> None:
        """Open the folder at `path`, find out whether it is a sync folder, and settle it."""
        place = self.roots.locate(path)
        if place is None or len(place.parts) < 2:
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
        if self._allowed(found) is not None:
            self._settle_mounted(found, home.owner_uid)
            return None
        try:
            detach(mount.mountpoint)
        except OSError as e:
            verdict = judge_folder(found, self._rules, self._machine_id)
            problem = f"could not unmount it: {e.strerror or e}"
            failed = CloudFolder(
                found,
                home.owner_uid,
                FolderState.FAILED,
                verdict.rule,
                verdict.reason,
                None,
                problem,
            )
            self._record(failed)
            return None
        self._homes.pop((place.root, place.home), None)
        self._mounts = None
        self._audit.append(
            "cloud.unmounted",
            {
                "path": found.path,
                "provider": found.provider,
                "fstype": mount.fstype,
                "uid": home.owner_uid,
            },
        )
        return found

    def _settle_open(self, place: Place, fd: int, hint: Found | None = None) -> None:
        seen = look(fd, place.relative)
        row = self._blocks.by_inode(seen.dev, seen.ino)
        owner = _recorded_owner(row, seen.uid)
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

    def _home(self, root: str, home: str) -> HomeFacts:
        key = (root, home)
        cached = self._homes.get(key)
        if cached is None:
            mounts = self._mount_table()
            cached = home_facts(self.roots.fds[root], root, home, self._sigs, mounts)
            self._homes[key] = cached
        return cached

    def _allowed(self, found: Found) -> CloudFolder | None:
        """What an allow rule or an approval in force says of this folder (owner and
        problem filled in by the caller), or None when it must be blocked."""
        verdict = judge_folder(found, self._rules, self._machine_id)
        if verdict.allowed:
            return CloudFolder(found, -1, FolderState.ALLOWED, verdict.rule, verdict.reason)
        approval = self._approval(found.path, found.provider)
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

    def _settle_mounted(self, found: Found, owner: int) -> None:
        allowed = self._allowed(found)
        if allowed is not None:
            self._record(replace(allowed, owner_uid=owner))

    def _settle(
        self, place: Place, fd: int, seen: Seen, found: Found, owner: int, row: BlockRow | None
    ) -> None:
        allowed = self._allowed(found)
        if allowed is not None:
            problem = self._unblock(fd, found, row, owner) if row is not None else ""
            folder = replace(allowed, owner_uid=owner, problem=problem)
        else:
            verdict = judge_folder(found, self._rules, self._machine_id)
            problem = self._block(place, fd, seen, found, row)
            state = FolderState.FAILED if problem else FolderState.BLOCKED
            folder = CloudFolder(found, owner, state, verdict.rule, verdict.reason, None, problem)
        self._record(folder)

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
            log.warning("%s: %s", folder.found.path, folder.problem or folder.reason)

    def _gone(self, path: str) -> None:
        gone = self._folders.pop(path, None)
        if gone is not None:
            self._audit.append(
                "cloud.gone",
                {"path": path, "provider": gone.found.provider, "uid": gone.owner_uid},
            )

    # -- blocking and restoring --------------------------------------------------------------

    def _block(self, place: Place, fd: int, seen: Seen, found: Found, row: BlockRow | None) -> str:
        """Record, then lock; '' when the folder is blocked, else what went wrong."""
        try:
            if row is None:
                recorded = lock.record(fd)
                self._blocks.add(
                    BlockRow(
                        found.path,
                        seen.dev,
                        seen.ino,
                        recorded.to_json(),
                        found_json(found),
                        self._clock(),
                    )
                )
            elif row.path != found.path:
                self._blocks.moved(seen.dev, seen.ino, found.path)
            if not lock.is_locked(fd):
                lock.lock(fd)
        except OSError as e:
            return f"could not block the folder: {e.strerror or e}"
        if not _still_at(place, seen):
            return self._undo_moved(fd, seen, found)
        return ""

    def _undo_moved(self, fd: int, seen: Seen, found: Found) -> str:
        """The folder left its place while it was being blocked (a rename or a symlink swap):
        put it back as it was, so nothing outside the homes keeps a change of guardd's."""
        row = self._blocks.by_inode(seen.dev, seen.ino)
        if row is not None:
            lock.restore(fd, lock.Recorded.from_json(row.recorded))
            self._blocks.remove(row.path)
        self._audit.append("cloud.moved_away", {"path": found.path, "provider": found.provider})
        return "the folder was moved while guardd was blocking it"

    def _unblock(self, fd: int, found: Found, row: BlockRow, owner: int) -> str:
        """Restore exactly what was recorded, then forget the block."""
        try:
            recorded = lock.Recorded.from_json(row.recorded)
            lock.restore(fd, recorded)
        except (OSError, ValueError, KeyError) as e:
            message = getattr(e, "strerror", None) or str(e)
            self._audit.append("cloud.restore_failed", {"path": found.path, "error": message})
            return f"could not restore the folder: {message}"
        self._blocks.remove(row.path)
        self._audit.append(
            "cloud.unblocked",
            {
                "path": found.path,
                "provider": found.provider,
                "uid": owner,
                "restored": {"uid": recorded.uid, "gid": recorded.gid, "mode": oct(recorded.mode)},
            },
        )
        return ""


def _recorded_owner(row: BlockRow | None, current: int) -> int:
    uid = row.recorded.get("uid") if row is not None else None
    return uid if type(uid) is int else current


def _named(home: HomeFacts, path: str, sigs: Signatures) -> Found | None:
    """A folder no marker gives away, but a sync client's config names (OneDrive's sync_dir)."""
    return next((f for f in found_in_home(home, sigs) if f.path == path), None)


def _still_at(place: Place, seen: Seen) -> bool:
    try:
        fd = open_dir(place.fd, place.relative)
    except (OSError, BeneathError):
        return False
    try:
        st = os.fstat(fd)
        return (st.st_dev, st.st_ino) == (seen.dev, seen.ino)
    finally:
        os.close(fd)


def _when(epoch: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(epoch))
