"""How blocking work (a scan, a clamd ping) runs beside the event loop and reports back to it.

The daemon's state is touched only on the loop's thread; worker threads do the blocking I/O
and hand their results back through the loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")


class LoopRunner:
    """Runs work on a bounded thread pool; callbacks run on the asyncio loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop, workers: int) -> None:
        self._loop = loop
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="guardd-work")

    def submit(self, work: Callable[[], T], done: Callable[[T | BaseException], None]) -> None:
        """Run `work` in a worker; call `done` with its result (or exception) on the loop."""
        future = self._pool.submit(work)

        def finished(f: Future[T]) -> None:
            error = f.exception()
            outcome: T | BaseException = error if error is not None else f.result()
            self._loop.call_soon_threadsafe(done, outcome)

        future.add_done_callback(finished)

    def call_soon(self, fn: Callable[..., Any], *args: Any) -> None:
        """Run `fn(*args)` on the loop (safe from any thread)."""
        self._loop.call_soon_threadsafe(fn, *args)

    def call_later(self, delay: float, fn: Callable[[], Any]) -> None:
        """Run `fn` on the loop after `delay` seconds (from the loop's thread)."""
        self._loop.call_later(delay, fn)

    def shutdown(self) -> None:
        """Stop taking work; running scans are left to finish on their own."""
        self._pool.shutdown(wait=False, cancel_futures=True)
