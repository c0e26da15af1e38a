"""Scan a mounted medium with clamd: a few worker threads taking turns at one walk.

Each file is opened by guardd (relative to its folder's descriptor, never through a link),
hashed, looked up in the clean cache, else handed to clamd as that open descriptor. After clamd
answered, the file is checked against a fresh look-up of its name: one modified or replaced
during the scan is scanned once more, and counts as CHANGED (not clean) if it changed again.
Nothing on the medium is ever written, deleted, or followed out of it, and nothing found on it
makes the scan raise: it becomes a line of the report.

The cost per file is kept to what those checks need, and clamd is kept busy: there are no
more threads than processors (hashing is the only work they can do side by side), each takes
its next file straight from the walk (no queue: the walk is never ahead of them), hashes it
with a buffer of its own, and keeps a few files in flight on one connection to clamd
(Clamd.session, as clamdscan does), so that clamd has the next file while guardd checks the
answer for the last. Clean verdicts go to the cache in batches, one transaction each.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import sqlite3
import stat
import threading
import time
from collections import deque
from collections.abc import Callable, Generator, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from guardd.scanning.cache import ScanCache
from guardd.scanning.clamd import Answer, ClamdProtocolError, ClamdUnavailable, ClamdVersion
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
READ_SIZE = 1 << 18  # each worker's buffer for hashing, reused for every file
REMEMBER_BATCH = 256  # clean digests written to the cache in one transaction
# A file more than its share per thread, waiting in clamd's queue: clamd starts on it while
# guardd is still checking the answer before, instead of idling.
AHEAD = 1

ProgressCallback = Callable[[Progress], None]


class ScanEngine(Protocol):
    """What the scanner needs of clamd (Clamd is one; tests may give a stand-in).

    An engine that also has `session()`, a context manager giving a Pipeline (Clamd's gives a
    ClamdSession), gets one per worker thread, with several files in flight on it; any other
    is called one file at a time per thread, as many threads as `workers`."""

    def version(self) -> ClamdVersion:
        """Engine and database version."""
        ...

    def scan_fd(self, fd: int) -> tuple[str, str]:
        """('OK', '') or ('FOUND', signature) for an open file, read from its start."""
        ...


class Pipeline(Protocol):
    """Files sent to be scanned, answers received as they come (ClamdSession is one)."""

    def submit(self, fd: int) -> int:
        """Send an open file (kept open until its answer came); its answer's ticket."""
        ...

    def receive(self) -> tuple[int, Answer]:
        """The next answer: its ticket, and the verdict or the exception that stands for it."""
        ...


class _OneAtATime:
    """A Pipeline over an engine's scan_fd: each file scanned when its answer is asked for."""

    def __init__(self, engine: ScanEngine) -> None:
        self._engine = engine
        self._submitted: deque[tuple[int, int]] = deque()
        self._tickets = 0

    def submit(self, fd: int) -> int:
        self._tickets += 1
        self._submitted.append((self._tickets, fd))
        return self._tickets

    def receive(self) -> tuple[int, Answer]:
        ticket, fd = self._submitted.popleft()
        try:
            return ticket, self._engine.scan_fd(fd)
        except ClamdUnavailable:
            raise
        except Exception as e:  # noqa: BLE001 - handed on: the file's own trouble, its answer
            return ticket, e


def unavailable_reason(error: ClamdUnavailable) -> str:
    """The staff sentence for clamd being away."""
    return NO_ANSWER if error.timed_out else NOT_RUNNING


@dataclass
class _Job:
    """A file of the walk, from its first look to its outcome (both attempts)."""

    dir_fd: int  # our own duplicate: closed when the job is done
    name: bytes
    path: bytes
    attempt: int = 1

    def close(self) -> None:
        """Close the folder descriptor (once: a number closed twice may be another's by
        then)."""
        fd, self.dir_fd = self.dir_fd, -1
        if fd >= 0:
            os.close(fd)


@dataclass
class _Opened:
    """A job's file, opened and hashed, waiting for its verdict."""

    job: _Job
    fd: int
    before: os.stat_result
    digest: bytes

    def close(self) -> None:
        """Close the file (once, as for _Job)."""
        fd, self.fd = self.fd, -1
        if fd >= 0:
            os.close(fd)


@dataclass(frozen=True)
class _Outcome:
    result: FileResult
    cached: bool = False
    digest: bytes | None = None  # remembered as clean once the file proved unchanged


def _key(st: os.stat_result) -> tuple[int, ...]:
    return (st.st_dev, st.st_ino, st.st_mode, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


class _Run:
    """One scan in progress, shared by the workers."""

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
        self.walk_lock = threading.Lock()  # the walk is one generator: one worker at a time
        self.walk_error: Exception | None = None  # a bug in the walk: raised to the caller
        self.retryable = False  # stopped because clamd could not be reached
        # Clean and unchanged, not yet in the cache: written a batch at a time, and already
        # an answer for the same content met again in this scan.
        self.fresh: set[bytes] = set()
        self.fresh_lock = threading.Lock()
        self._cancel = cancel
        self._failure = ""
        self._progress = progress
        self._progress_lock = threading.Lock()
        self._last_progress = 0.0

    def fail(self, reason: str, retryable: bool = False) -> None:
        """Stop every worker: the scan cannot finish (first reason wins)."""
        if not self.stop.is_set():
            self._failure = reason
            self.retryable = retryable
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
    """Scans folders (mounted media) with clamd, `workers` files at a time.

    With clamd (an engine with sessions) the work is done by as many threads as there are
    processors, up to `workers`, each keeping its share of the `workers` files with clamd,
    plus one waiting in clamd's queue (AHEAD). With any other engine, `workers` threads scan
    one file each."""

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
            return Tally().report(
                0, time.monotonic() - started, unavailable_reason(e), retryable=True
            )
        except ClamdProtocolError:
            # A clamd being killed or restarted can answer half a line: the drive stays held
            # either way, and guardd asks again later instead of giving up on it.
            return Tally().report(0, time.monotonic() - started, BAD_ANSWER, retryable=True)
        self._forget_other_versions(db_version)
        run = _Run(total(), progress, cancel, db_version)
        run.tick()
        with contextlib.closing(entries()) as found:  # closing the walk closes its folders
            self._pump(found, run)
        run.tick(final=True)
        return run.tally.report(
            db_version, time.monotonic() - started, run.stopped_reason(), run.retryable
        )

    def _forget_other_versions(self, db_version: int) -> None:
        if self._cache is not None and db_version:
            with contextlib.suppress(sqlite3.Error):
                self._cache.forget_other_versions(db_version)

    def _pump(self, found: Iterator[Entry], run: _Run) -> None:
        pipelined = callable(getattr(self._clamd, "session", None))
        cpus = len(os.sched_getaffinity(0))
        threads = min(self._workers, cpus) if pipelined else self._workers
        # Each thread's share of the workers' files (and one ahead, with clamd's queue).
        depth = -(-self._workers // threads) + (AHEAD if pipelined else 0)
        workers = [
            threading.Thread(target=self._work, args=(found, run, depth), name=f"guardd-scan-{i}")
            for i in range(threads)
        ]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        self._write_fresh(run, everything=True)
        if run.walk_error is not None:
            raise run.walk_error

    def _session(self) -> AbstractContextManager[Pipeline]:
        session: Callable[[], AbstractContextManager[Pipeline]] | None = getattr(
            self._clamd, "session", None
        )
        if session is None:
            return contextlib.nullcontext(_OneAtATime(self._clamd))
        return session()

    def _work(self, found: Iterator[Entry], run: _Run, depth: int) -> None:
        """One worker: keep up to `depth` files with clamd, taking the next from the walk as
        each answer comes back and is checked."""
        buffer = bytearray(READ_SIZE)
        flying: dict[int, _Opened] = {}  # by ticket
        walking = True
        try:
            with self._session() as engine:
                while not run.stopped():
                    if walking and len(flying) < depth:
                        job = self._next_job(found, run)
                        if job is None:
                            walking = False
                        else:
                            self._start(job, engine, buffer, run, flying)
                    elif flying:
                        ticket, answer = engine.receive()
                        self._answered(flying.pop(ticket), answer, engine, buffer, run, flying)
                    else:
                        break
        except ClamdUnavailable as e:
            run.fail(unavailable_reason(e), retryable=True)
        finally:  # stopped or failed: what is still with clamd is dropped, unjudged
            for opened in flying.values():
                opened.close()
                opened.job.close()

    def _next_job(self, found: Iterator[Entry], run: _Run) -> _Job | None:
        """The walk's next file (None when the walk ended or the scan stopped); what the walk
        found that is not a file to scan is counted on the way."""
        with run.walk_lock:
            while not run.stopped():
                try:
                    entry = next(found, None)
                except Exception as e:  # noqa: BLE001 - a bug in the walk: the caller's
                    run.walk_error = e
                    run.stop.set()
                    return None
                if entry is None:
                    return None
                if isinstance(entry, FileResult):
                    run.record(entry, regular_file=False)
                    continue
                try:
                    # The walk's folder descriptor is only borrowed until it moves on.
                    return _Job(os.dup(entry.dir_fd), entry.name, entry.path)
                except OSError as e:  # out of descriptors: this file is not scanned, says so
                    run.record(FileResult(entry.path, FileOutcome.ERROR, detail=str(e)), True)
        return None

    def _start(
        self,
        job: _Job,
        engine: Pipeline,
        buffer: bytearray,
        run: _Run,
        flying: dict[int, _Opened],
    ) -> None:
        """Open and hash the file; answer from the cache, or send it to clamd."""
        try:
            opened = self._open(job, buffer)
            if isinstance(opened, FileResult):
                self._done(job, _Outcome(opened), run)
            elif self._known_clean(opened.digest, run):
                clean = FileResult(job.path, FileOutcome.CLEAN, detail="known clean")
                self._judged(opened, _Outcome(clean, cached=True), engine, buffer, run, flying)
            else:
                try:
                    flying[engine.submit(opened.fd)] = opened
                except BaseException:
                    opened.close()
                    raise
        except ClamdUnavailable:
            job.close()
            raise
        except Exception as e:  # a surprise costs this file (not clean), not the scan
            log.exception("scanning %r failed", job.path)
            self._surprise(job, e, run)

    def _open(self, job: _Job, buffer: bytearray) -> _Opened | FileResult:
        try:
            fd = open_file(job.dir_fd, job.name)
        except OSError as e:
            return error_result(job.path, e)
        try:
            before = os.fstat(fd)
            if not stat.S_ISREG(before.st_mode):
                os.close(fd)
                return FileResult(job.path, FileOutcome.SKIPPED, detail=SPECIAL)
            return _Opened(job, fd, before, _sha256(fd, buffer, before.st_size))
        except OSError as e:  # a read error on the medium (EIO)
            os.close(fd)
            return error_result(job.path, e)

    def _answered(
        self,
        opened: _Opened,
        answer: Answer,
        engine: Pipeline,
        buffer: bytearray,
        run: _Run,
        flying: dict[int, _Opened],
    ) -> None:
        try:
            outcome = self._verdict(opened, answer)
            self._judged(opened, outcome, engine, buffer, run, flying)
        except ClamdUnavailable:
            raise
        except Exception as e:  # a surprise costs this file (not clean), not the scan
            log.exception("scanning %r failed", opened.job.path)
            opened.close()
            self._surprise(opened.job, e, run)

    def _judged(
        self,
        opened: _Opened,
        outcome: _Outcome,
        engine: Pipeline,
        buffer: bytearray,
        run: _Run,
        flying: dict[int, _Opened],
    ) -> None:
        """The file has its verdict: it counts if the file is still what was judged (or is
        infected: no change clears that); else it is judged once more, or is CHANGED."""
        job = opened.job
        try:
            if self.on_scanned is not None:
                self.on_scanned(job.path)
            stable = self._unchanged(opened.before, opened.fd, job)
        finally:
            opened.close()
        if stable and outcome.digest is not None:
            self._remember(outcome.digest, run)
        if stable or outcome.result.outcome is FileOutcome.INFECTED:
            self._done(job, outcome, run)
        elif job.attempt == 1:
            job.attempt = 2
            self._start(job, engine, buffer, run, flying)
        else:
            detail = "modified or replaced while it was being scanned, twice"
            self._done(job, _Outcome(FileResult(job.path, FileOutcome.CHANGED, detail=detail)), run)

    @staticmethod
    def _done(job: _Job, outcome: _Outcome, run: _Run) -> None:
        job.close()
        run.record(outcome.result, regular_file=True, cached=outcome.cached)

    @staticmethod
    def _surprise(job: _Job, error: Exception, run: _Run) -> None:
        Scanner._done(
            job, _Outcome(FileResult(job.path, FileOutcome.ERROR, detail=f"{error!r}")), run
        )

    @staticmethod
    def _unchanged(before: os.stat_result, fd: int, job: _Job) -> bool:
        """Same file (not replaced under its name) and same content as when opened."""
        try:
            by_fd = os.fstat(fd)
            by_name = os.stat(job.name, dir_fd=job.dir_fd, follow_symlinks=False)
        except OSError:
            return False
        return _key(before) == _key(by_fd) == _key(by_name)

    def _verdict(self, opened: _Opened, answer: Answer) -> _Outcome:
        path = opened.job.path
        if isinstance(answer, ClamdProtocolError):  # ClamdScanError too: could not read/unpack
            return _Outcome(FileResult(path, FileOutcome.ERROR, detail=str(answer)))
        if isinstance(answer, OSError):  # reading the medium, for INSTREAM (EIO)
            return _Outcome(error_result(path, answer))
        if isinstance(answer, Exception):
            raise answer
        status, signature = answer
        if status == "OK":
            return _Outcome(FileResult(path, FileOutcome.CLEAN), digest=opened.digest)
        if not signature.startswith(LIMITS_PREFIX):
            return _Outcome(FileResult(path, FileOutcome.INFECTED, signature))
        if self.accept_limits_exceeded:
            detail = "too big to scan fully; accepted by configuration"
            return _Outcome(FileResult(path, FileOutcome.CLEAN, signature, detail))
        detail = "too big, or packed too deeply, for the virus scanner to look inside"
        return _Outcome(FileResult(path, FileOutcome.LIMITS_EXCEEDED, signature, detail))

    def _known_clean(self, digest: bytes, run: _Run) -> bool:
        # Version 0 means clamd loaded no versioned database: nothing would tell us when it
        # changes, so the cache is not used at all.
        if self._cache is None or not run.db_version:
            return False
        if digest in run.fresh:  # set membership: atomic under the GIL
            return True
        try:
            return self._cache.is_clean(digest, run.db_version)
        except sqlite3.Error:
            log.warning("scan cache unreadable; scanning without it", exc_info=True)
            return False

    def _remember(self, digest: bytes, run: _Run) -> None:
        if self._cache is None or not run.db_version:
            return
        with run.fresh_lock:
            run.fresh.add(digest)
        if len(run.fresh) >= REMEMBER_BATCH:
            self._write_fresh(run)

    def _write_fresh(self, run: _Run, everything: bool = False) -> None:
        """Write the fresh clean digests to the cache (a full batch, or all at the end)."""
        with run.fresh_lock:
            if self._cache is None or not (everything or len(run.fresh) >= REMEMBER_BATCH):
                return
            batch, run.fresh = run.fresh, set()
        try:
            self._cache.remember_many(batch, run.db_version)
        except sqlite3.Error:
            log.warning("scan cache not writable; results not kept", exc_info=True)


def _sha256(fd: int, buffer: bytearray, size: int) -> bytes:
    """The file's SHA-256, read by offset (the descriptor's own offset stays at the start).
    `size` is what fstat said: a short read ending there is the end, without one more read
    to see nothing (a file that grew meanwhile fails the check for changes after)."""
    digest = hashlib.sha256()
    view = memoryview(buffer)
    offset = 0
    while count := os.preadv(fd, [buffer], offset):
        digest.update(view[:count])
        offset += count
        if count < len(buffer) and offset == size:
            break
    return digest.digest()
