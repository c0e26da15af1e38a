"""The cloud-sync guard inside the daemon: watcher, start-up crawl, and the fallback crawl.

At start the watches are set first and the homes crawled after (both on a worker thread,
since both walk every folder), so nothing created during the crawl is missed. A watch root
inotify could not watch (the max_user_watches limit) is crawled again every RECRAWL_S.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from pathlib import Path

from guardd.audit import AuditLog
from guardd.cloud.guard import ApprovalFor, CloudGuard, CrawlResult
from guardd.cloud.roots import Roots
from guardd.cloud.watcher import DEBOUNCE_S, HomeWatcher, WatchFailure
from guardd.runner import LoopRunner
from guardd.store.cloud import CloudBlocks
from rules import RuleSet

log = logging.getLogger(__name__)

RECRAWL_S = 60.0  # a root inotify cannot watch
SAFETY_CRAWL_S = 600.0  # every root, in case inotify lost something it did not report
LIMIT_ADVICE = (
    "raise fs.inotify.max_user_watches (for example to 1048576 in /etc/sysctl.d/guardd.conf)"
)


class CloudService:
    """Owns the guard's watcher and crawls; the guard itself decides."""

    def __init__(
        self,
        *,
        homes: tuple[Path, ...],
        blocks: CloudBlocks,
        audit: AuditLog,
        rules: RuleSet,
        machine_id: str,
        approval: ApprovalFor,
    ) -> None:
        self._audit = audit
        roots = Roots([str(h) for h in homes])
        self.guard = CloudGuard(
            roots=roots,
            blocks=blocks,
            audit=audit,
            rules=rules,
            machine_id=machine_id,
            approval=approval,
        )
        self._watcher: HomeWatcher | None = None
        self._runner: LoopRunner | None = None
        self._unwatched: list[str] = []
        self._crawling = False
        for root, reason in roots.missing.items():
            audit.append("cloud.root_missing", {"root": root, "reason": reason})

    def start(self, loop: asyncio.AbstractEventLoop, runner: LoopRunner) -> None:
        """Watch, then crawl, on a worker; judge what was found on the loop."""
        self._runner = runner
        if not self.guard.roots.fds:
            return

        def schedule(fn: Callable[[], None]) -> None:
            loop.call_soon_threadsafe(loop.call_later, DEBOUNCE_S, fn)

        def lost() -> None:
            loop.call_soon_threadsafe(self._events_lost)

        roots = list(self.guard.roots.fds)
        self._watcher = HomeWatcher(roots, schedule, self.guard.changed, lost)
        runner.submit(self._watch_and_crawl, self._started)

    def _watch_and_crawl(self) -> tuple[list[WatchFailure], CrawlResult]:
        assert self._watcher is not None
        failures = self._watcher.start()
        return failures, self.guard.crawl()

    def _started(self, outcome: tuple[list[WatchFailure], CrawlResult] | BaseException) -> None:
        if isinstance(outcome, BaseException):
            self._audit.append("cloud.crawl_failed", {"error": str(outcome)})
            log.error("the cloud-sync crawl failed: %s", outcome)
            return
        failures, result = outcome
        for failure in failures:
            self._audit.append(
                "cloud.watch_failed",
                {
                    "root": failure.root,
                    "reason": failure.reason,
                    "limit_reached": failure.limit_reached,
                },
            )
            advice = f"; {LIMIT_ADVICE}" if failure.limit_reached else ""
            log.warning(
                "cannot watch %s (%s): crawling it every %.0f s instead%s",
                failure.root,
                failure.reason,
                RECRAWL_S,
                advice,
            )
        self._unwatched = [f.root for f in failures]
        self.guard.crawled(result)
        self._schedule_recrawl()

    def _schedule_recrawl(self) -> None:
        runner = self._runner
        if runner is not None:
            runner.call_later(RECRAWL_S if self._unwatched else SAFETY_CRAWL_S, self._recrawl)

    def _recrawl(self, again: bool = True) -> None:
        runner = self._runner
        if runner is None or self._crawling:
            return
        self._crawling = True

        def done(outcome: CrawlResult | BaseException) -> None:
            self._crawling = False
            if isinstance(outcome, CrawlResult):
                self.guard.crawled(outcome, quiet=True)
            if again:
                self._schedule_recrawl()

        runner.submit(self.guard.crawl, done)

    def _events_lost(self) -> None:
        """inotify dropped events (or could not watch a new folder): crawl at once."""
        self._audit.append("cloud.events_lost", {"action": "crawling the homes again"})
        self._recrawl(again=False)

    def stop(self) -> None:
        """Stop watching (blocks stay: they are the point)."""
        if self._watcher is not None:
            self._watcher.stop()
        self.guard.roots.close()
