"""The event bus: the audit trail's records handed to subscribers, each with its own bounded
queue, so a slow or stuck subscriber can never block the daemon or make it grow.

`publish` is the audit log's listener: it may be called from any thread and hands the record
to the event loop. Each subscriber's queue holds at most `queue_size` records; one more and
the subscriber is dropped (its connection is closed; the tray reconnects and reads the state
afresh). The number of subscribers is capped, overall and per user.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections import deque
from collections.abc import Callable

from guardd.audit.record import AuditRecord
from guardd.errors import ErrorCode, GuarddError
from guardd.events.visibility import visible

QUEUE_SIZE = 256
MAX_SUBSCRIBERS = 32
MAX_PER_UID = 4


class Subscriber:
    """One peer's queue of records it may see."""

    def __init__(self, uid: int, admin: bool, queue_size: int) -> None:
        self.uid = uid
        self.admin = admin
        self.dropped = False
        self._queue: deque[AuditRecord] = deque()
        self._size = queue_size
        self._ready = asyncio.Event()
        self.on_drop: Callable[[], None] = lambda: None

    def offer(self, record: AuditRecord) -> None:
        """Queue a record if this peer may see it; drop the subscriber when it is full."""
        if self.dropped or not visible(record.event, record.data, self.uid, self.admin):
            return
        if len(self._queue) >= self._size:
            self.drop()
            return
        self._queue.append(record)
        self._ready.set()

    def drop(self) -> None:
        """Stop this subscriber: its queue is emptied and its connection closed."""
        if self.dropped:
            return
        self.dropped = True
        self._queue.clear()
        self._ready.set()
        with contextlib.suppress(Exception):
            self.on_drop()

    async def next(self) -> AuditRecord | None:
        """The next record, waiting for one; None once the subscriber is dropped."""
        while not self._queue and not self.dropped:
            self._ready.clear()
            await self._ready.wait()
        if self.dropped:
            return None
        return self._queue.popleft()

    def __len__(self) -> int:
        """Records waiting."""
        return len(self._queue)


class EventBus:
    """Fans records out to subscribers on the event loop it is attached to."""

    def __init__(
        self,
        queue_size: int = QUEUE_SIZE,
        max_subscribers: int = MAX_SUBSCRIBERS,
        max_per_uid: int = MAX_PER_UID,
    ) -> None:
        self._queue_size = queue_size
        self._max = max_subscribers
        self._max_per_uid = max_per_uid
        self._subscribers: list[Subscriber] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: int | None = None

    def attach(self, loop: asyncio.AbstractEventLoop) -> None:
        """Deliver on `loop` (call from the loop's own thread)."""
        self._loop = loop
        self._loop_thread = threading.get_ident()

    def publish(self, record: AuditRecord) -> None:
        """Hand a record to every subscriber (from any thread; never blocks, never raises)."""
        loop = self._loop
        if loop is None or not self._subscribers:
            return
        if threading.get_ident() == self._loop_thread:
            self._deliver(record)
            return
        with contextlib.suppress(RuntimeError):  # the loop is closing: nobody is listening
            loop.call_soon_threadsafe(self._deliver, record)

    def _deliver(self, record: AuditRecord) -> None:
        for subscriber in list(self._subscribers):
            subscriber.offer(record)
            if subscriber.dropped:
                self.unsubscribe(subscriber)

    def subscribe(self, uid: int, admin: bool) -> Subscriber:
        """A new subscriber (on the loop's thread); refused when too many are listening."""
        mine = sum(1 for s in self._subscribers if s.uid == uid)
        if len(self._subscribers) >= self._max or mine >= self._max_per_uid:
            raise GuarddError(
                ErrorCode.UNAVAILABLE, "too many programs are listening to guardd's events"
            )
        subscriber = Subscriber(uid, admin, self._queue_size)
        self._subscribers.append(subscriber)
        return subscriber

    def unsubscribe(self, subscriber: Subscriber) -> None:
        """Forget a subscriber (idempotent)."""
        with contextlib.suppress(ValueError):
            self._subscribers.remove(subscriber)

    def drop_all(self) -> None:
        """Hang up on every subscriber (guardd is stopping; they reconnect to the next one)."""
        for subscriber in list(self._subscribers):
            subscriber.drop()
        self._subscribers.clear()

    @property
    def subscribers(self) -> int:
        """How many are listening."""
        return len(self._subscribers)
