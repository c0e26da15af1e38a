"""Scan a mounted medium with clamd: a walk feeding a few worker threads through a small queue.

Each file is opened by guardd (relative to its folder's descriptor, never through a link),
hashed, looked up in the clean cache, else handed to clamd as that open descriptor. After clamd
answered, the file is checked against a fresh look-up of its name: one modified or replaced
during the scan is scanned once more, and counts as CHANGED (not clean) if it changed again.
Nothing on the medium is ever written, deleted, or followed out of it, and nothing found on it
makes the scan raise: it becomes a line of the report.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import queue
import sqlite3
import stat
import threading
import time
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from guardd.scanning.cache import ScanCache
from guardd.scanning.clamd import ClamdProtocolError, ClamdUnavailable, ClamdVersion
from guardd.scanning.result import (
    LIMITS_PREFIX,
    FileOutcome,
    FileResult,
    Progress,
    ScanReport,
    Tally,
)
from guardd.scanning.walker import (
    SPECIAL,
    Entry,
    FoundFile,
    count_files,
    error_result,
    open_file,
    open_root,
    resolve,
    walk,
)

log = logging.getLogger(__name__)

NOT_RUNNING = "cannot scan right now: the virus scanner is not running"
NO_ANSWER = "cannot scan right now: the virus scanner did not answer"
BAD_ANSWER = "cannot scan right now: the virus scanner gave an answer guardd does not understand"
CANCELLED = "not scanned: the scan was stopped before it finished"
PROGRESS_INTERVAL = 0.1  # at most ten progress calls a second, plus the final one
READ_SIZE = 1 << 20
QUEUE_PER_WORKER = 4  # bounded: the walk never runs far ahead of the workers

ProgressCallback = Callable[[Progress], None]


class ScanEngine(Protocol):
    """What the scanner needs of clamd (Clamd is one; tests may give a stand-in)."""

    def version(self) -> ClamdVersion:
        """Engine and database version."""
        ...

    def scan_fd(self, fd: int) -> tuple[str, str]:
        """('OK', '') or ('FOUND', signature) for an open file."""
        ...


def unavailable_reason(error: ClamdUnavailable) -> str:
    """The staff sentence for clamd being away."""
    return NO_ANSWER if error.timed_out else NOT_RUNNING


@dataclass
class _Job:
    dir_fd: int  # our own duplicate: closed when the job is done
    name: bytes
    path: bytes
    db_version: int  # of the database that judges it (the cache key)

    def close(self) -> None:
        os.close(self.dir_fd)


@dataclass(frozen=True)
class _Outcome:
    result: FileResult
    cached: bool = False
    digest: bytes | None = None  # remembered as clean once the file proved unchanged


def _key(st: os.stat_result) -> tuple[int, ...]:
    return (st.st_dev, st.st_ino, st.st_mode, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


class _Run:
    """One scan in progress, shared by the walk (producer) and the workers."""

    def __init__(
        self,
        total: int,
        progress: ProgressCallback | None,
        cancel: threading.Event | None,
        db_version: int,
    ) -> None:
        self.db_version = db_version
        self.tally = Tally(files_total=total)
        self.stop = threading.Event()
        self._cancel = cancel
        self._failure = ""
        self._progress = progress
        self._progress_lock = threading.Lock()
        self._last_progress = 0.0

    def fail(self, reason: str) -> None:
        """Stop every worker: the scan cannot finish (first reason wins)."""
        if not self.stop.is_set():
            self._failure = reason
            self.stop.set()

    def stopped(self) -> bool:
        """Whether the workers should stop taking files."""
        return self.stop.is_set() or (self._cancel is not None and self._cancel.is_set())

    def stopped_reason(self) -> str:
        """Why the scan did not finish, or '' when it did."""
        if self._failure:
            return self._failure
        return CANCELLED if self.stopped() else ""

    def record(self, result: FileResult, regular_file: bool, cached: bool = False) -> None:
        """Count one outcome, then maybe tell the caller how far we are."""
        self.tally.add(result, regular_file, cached)
        if regular_file:
            self.tick()

    def tick(self, final: bool = False) -> None:
        """Call the progress callback, at most every PROGRESS_INTERVAL (always when final)."""
        if self._progress is None or not self._progress_lock.acquire(blocking=final):
            return
        try:
            now = time.monotonic()
            if final or now - self._last_progress >= PROGRESS_INTERVAL:
                self._last_progress = now
                done = self.tally.files_done
                self._progress(Progress(done, max(self.tally.files_total, done)))
        except Exception:  # the caller's callback failing must not stop the scan
            log.exception("scan progress callback failed")
        finally:
            self._progress_lock.release()


class Scanner:
    """Scans folders (mounted media) with clamd, `workers` files at a time."""

    def __init__(
        self,
        clamd: ScanEngine,
        cache: ScanCache | None,
        workers: int = 4,
        accept_limits_exceeded: bool = False,
    ) -> None:
        self._clamd = clamd
        self._cache = cache
        self._workers = max(1, workers)
        # Public: the daemon sets it again when the rules (which decide it) are reloaded.
        self.accept_limits_exceeded = accept_limits_exceeded
        # Test hook: called with a file's path after clamd answered and before the file is
        # checked for changes (to replace a file at exactly the racy moment).
        self.on_scanned: Callable[[bytes], None] | None = None

    def scan_tree(
        self,
        root: Path | int,
        progress: ProgressCallback | None = None,
        cancel: threading.Event | None = None,
    ) -> ScanReport:
        """Scan everything under `root` (a folder, or a descriptor of one, left open)."""
        started = time.monotonic()
        try:
            root_fd = open_root(root)
        except OSError as e:
            reason = f"not scanned: the folder cannot be opened ({os.strerror(e.errno or 0)})"
            return Tally().report(0, time.monotonic() - started, reason)
        try:
            return self._scan(
                lambda: walk(root_fd), lambda: count_files(root_fd), progress, cancel, started
            )
        finally:
            os.close(root_fd)

    def scan_paths(
        self,
        root_fd: int,
        names: list[bytes],
        progress: ProgressCallback | None = None,
        cancel: threading.Event | None = None,
    ) -> ScanReport:
        """Scan some files (or folders) given relative to the root, e.g. files written to the
        medium after it was first scanned."""

        def entries() -> Generator[Entry, None, None]:
            for name in names:
                yield from resolve(root_fd, name)  # closing us closes it (and its folder)

        def total() -> int:
            return sum(1 for entry in entries() if isinstance(entry, FoundFile))

        return self._scan(entries, total, progress, cancel, time.monotonic())

    def _scan(
        self,
        entries: Callable[[], Generator[Entry, None, None]],
        total: Callable[[], int],
        progress: ProgressCallback | None,
        cancel: threading.Event | None,
        started: float,
    ) -> ScanReport:
        try:
            db_version = self._clamd.version().db_version
        except ClamdUnavailable as e:
            return Tally().report(0, time.monotonic() - started, unavailable_reason(e))
        except ClamdProtocolError:
            return Tally().report(0, time.monotonic() - started, BAD_ANSWER)
        self._forget_other_versions(db_version)
        run = _Run(total(), progress, cancel, db_version)
        run.tick()
        with contextlib.closing(entries()) as found:  # closing the walk closes its folders
            self._pump(found, run)
        run.tick(final=True)
        return run.tally.report(db_version, time.monotonic() - started, run.stopped_reason())

    def _forget_other_versions(self, db_version: int) -> None:
        if self._cache is not None and db_version:
            with contextlib.suppress(sqlite3.Error):
                self._cache.forget_other_versions(db_version)

    def _pump(self, found: Iterator[Entry], run: _Run) -> None:
        jobs: queue.Queue[_Job | None] = queue.Queue(maxsize=QUEUE_PER_WORKER * self._workers)
        threads = [
            threading.Thread(target=self._work, args=(jobs, run), name=f"guardd-scan-{i}")
            for i in range(self._workers)
        ]
        for thread in threads:
            thread.start()
        try:
            for entry in found:
                if run.stopped() or not self._feed(entry, jobs, run):
                    break
        finally:
            for _ in threads:
                jobs.put(None)  # workers always drain the queue, so this cannot block for long
            for thread in threads:
                thread.join()

    def _feed(self, entry: Entry, jobs: queue.Queue[_Job | None], run: _Run) -> bool:
        if isinstance(entry, FileResult):
            run.record(entry, regular_file=False)
            return True
        try:
            job = _Job(os.dup(entry.dir_fd), entry.name, entry.path, run.db_version)
        except OSError as e:  # out of descriptors: this file is not scanned, and says so
            run.record(FileResult(entry.path, FileOutcome.ERROR, detail=str(e)), True)
            return True
        while True:
            try:
                jobs.put(job, timeout=0.1)
            except queue.Full:
                if run.stopped():
                    job.close()
                    return False
            else:
                return True

    def _work(self, jobs: queue.Queue[_Job | None], run: _Run) -> None:
        while (job := jobs.get()) is not None:
            try:
                if not run.stopped():
                    self._run_job(job, run)
            finally:
                job.close()

    def _run_job(self, job: _Job, run: _Run) -> None:
        try:
            outcome = self._check_file(job)
        except ClamdUnavailable as e:
            run.fail(unavailable_reason(e))
            return
        except Exception as e:  # a surprise costs this file (not clean), not the scan
            log.exception("scanning %r failed", job.path)
            outcome = _Outcome(FileResult(job.path, FileOutcome.ERROR, detail=f"{e!r}"))
        run.record(outcome.result, regular_file=True, cached=outcome.cached)

    def _check_file(self, job: _Job) -> _Outcome:
        """Scan once; if the file changed meanwhile, once more; still changing: CHANGED."""
        outcome, stable = self._scan_once(job)
        if stable or outcome.result.outcome is FileOutcome.INFECTED:
            return outcome
        outcome, stable = self._scan_once(job)
        if stable or outcome.result.outcome is FileOutcome.INFECTED:
            return outcome
        detail = "modified or replaced while it was being scanned, twice"
        return _Outcome(FileResult(job.path, FileOutcome.CHANGED, detail=detail))

    def _scan_once(self, job: _Job) -> tuple[_Outcome, bool]:
        try:
            fd = open_file(job.dir_fd, job.name)
        except OSError as e:
            return _Outcome(error_result(job.path, e)), True
        try:
            before = os.fstat(fd)
            if not stat.S_ISREG(before.st_mode):
                return _Outcome(FileResult(job.path, FileOutcome.SKIPPED, detail=SPECIAL)), True
            outcome = self._judge(fd, job)
            if self.on_scanned is not None:
                self.on_scanned(job.path)
            stable = self._unchanged(before, fd, job)
        except OSError as e:  # a read error on the medium (EIO)
            return _Outcome(error_result(job.path, e)), True
        finally:
            os.close(fd)
        if stable and outcome.digest is not None:
            self._remember(outcome.digest, job.db_version)
        return outcome, stable

    @staticmethod
    def _unchanged(before: os.stat_result, fd: int, job: _Job) -> bool:
        """Same file (not replaced under its name) and same content as when opened."""
        try:
            by_fd = os.fstat(fd)
            by_name = os.stat(job.name, dir_fd=job.dir_fd, follow_symlinks=False)
        except OSError:
            return False
        return _key(before) == _key(by_fd) == _key(by_name)

    def _judge(self, fd: int, job: _Job) -> _Outcome:
        path = job.path
        digest = _sha256(fd)
        if self._known_clean(digest, job.db_version):
            return _Outcome(FileResult(path, FileOutcome.CLEAN, detail="known clean"), cached=True)
        os.lseek(fd, 0, os.SEEK_SET)
        try:
            status, signature = self._clamd.scan_fd(fd)
        except ClamdProtocolError as e:  # ClamdScanError too: clamd could not read or unpack it
            return _Outcome(FileResult(path, FileOutcome.ERROR, detail=str(e)))
        if status == "OK":
            return _Outcome(FileResult(path, FileOutcome.CLEAN), digest=digest)
        if not signature.startswith(LIMITS_PREFIX):
            return _Outcome(FileResult(path, FileOutcome.INFECTED, signature))
        if self.accept_limits_exceeded:
            detail = "too big to scan fully; accepted by configuration"
            return _Outcome(FileResult(path, FileOutcome.CLEAN, signature, detail))
        detail = "too big, or packed too deeply, for the virus scanner to look inside"
        return _Outcome(FileResult(path, FileOutcome.LIMITS_EXCEEDED, signature, detail))

    def _known_clean(self, digest: bytes, db_version: int) -> bool:
        # Version 0 means clamd loaded no versioned database: nothing would tell us when it
        # changes, so the cache is not used at all.
        if self._cache is None or not db_version:
            return False
        try:
            return self._cache.is_clean(digest, db_version)
        except sqlite3.Error:
            log.warning("scan cache unreadable; scanning without it", exc_info=True)
            return False

    def _remember(self, digest: bytes, db_version: int) -> None:
        if self._cache is None or not db_version:
            return
        try:
            self._cache.remember_clean(digest, db_version)
        except sqlite3.Error:
            log.warning("scan cache not writable; result not kept", exc_info=True)


def _sha256(fd: int) -> bytes:
    digest = hashlib.sha256()
    os.lseek(fd, 0, os.SEEK_SET)
    while block := os.read(fd, READ_SIZE):
        digest.update(block)
    return digest.digest()
