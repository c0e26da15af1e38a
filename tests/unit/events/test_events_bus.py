"""The event bus: per-subscriber filtering, bounded queues (a stuck subscriber is dropped,
never waited for), caps on subscribers, and records from other threads."""

from __future__ import annotations

import asyncio
import threading

import pytest

from guardd.audit.record import AuditRecord, JsonValue
from guardd.errors import ErrorCode, GuarddError
from guardd.events import EventBus, Subscriber

STAFF, OTHER = 1000, 1001


def record(seq: int, event: str = "device.decision", **data: JsonValue) -> AuditRecord:
    return AuditRecord(seq, "2026-11-22T10:00:00.000000Z", event, data, "0" * 64, "f" * 64)


def dropped(subscriber: Subscriber) -> bool:
    return subscriber.dropped


def test_each_subscriber_gets_what_it_may_see_in_order() -> None:
    async def main() -> tuple[list[int], list[int]]:
        bus = EventBus()
        bus.attach(asyncio.get_running_loop())
        staff, it = bus.subscribe(STAFF, admin=False), bus.subscribe(OTHER, admin=True)
        bus.publish(record(1))
        bus.publish(record(2, "request.created", uid=OTHER))
        bus.publish(record(3, "request.created", uid=STAFF))
        bus.publish(record(4, "rules.reloaded"))
        seen_staff = [(await staff.next()) for _ in range(len(staff))]
        seen_it = [(await it.next()) for _ in range(len(it))]
        return [r.seq for r in seen_staff if r], [r.seq for r in seen_it if r]

    staff, it = asyncio.run(main())
    assert staff == [1, 3]
    assert it == [1, 2, 3, 4]


def test_a_subscriber_that_falls_behind_is_dropped_and_the_others_carry_on() -> None:
    async def main() -> None:
        bus = EventBus(queue_size=8)
        bus.attach(asyncio.get_running_loop())
        stuck, reader = bus.subscribe(STAFF, admin=False), bus.subscribe(OTHER, admin=True)
        closed: list[str] = []
        stuck.on_drop = lambda: closed.append("closed")
        for seq in range(1, 9):
            bus.publish(record(seq))
            assert await reader.next() is not None  # this one keeps up
        assert len(stuck) == 8
        assert not stuck.dropped
        bus.publish(record(9))  # one more than the stuck one can hold
        assert dropped(stuck)
        assert len(stuck) == 0
        assert closed == ["closed"]
        assert await stuck.next() is None
        assert bus.subscribers == 1
        bus.publish(record(10))
        got = [await reader.next(), await reader.next()]
        assert [r.seq for r in got if r] == [9, 10]

    asyncio.run(main())


def test_the_number_of_subscribers_is_capped_overall_and_per_user() -> None:
    async def main() -> None:
        bus = EventBus(max_subscribers=3, max_per_uid=2)
        bus.attach(asyncio.get_running_loop())
        first = bus.subscribe(STAFF, admin=False)
        bus.subscribe(STAFF, admin=False)
        with pytest.raises(GuarddError) as refused:
            bus.subscribe(STAFF, admin=False)
        assert refused.value.code is ErrorCode.UNAVAILABLE
        bus.subscribe(OTHER, admin=False)
        with pytest.raises(GuarddError):
            bus.subscribe(OTHER + 1, admin=False)
        bus.unsubscribe(first)
        bus.unsubscribe(first)  # idempotent
        bus.subscribe(OTHER + 1, admin=False)

    asyncio.run(main())


def test_records_written_by_other_threads_arrive_on_the_loop() -> None:
    async def main() -> list[int]:
        bus = EventBus()
        bus.attach(asyncio.get_running_loop())
        sub = bus.subscribe(STAFF, admin=True)
        loop_thread = threading.get_ident()
        seen_in: list[int] = []
        original = sub.offer

        def offer(r: AuditRecord) -> None:
            seen_in.append(threading.get_ident())
            original(r)

        setattr(sub, "offer", offer)  # noqa: B010 - a spy on the subscriber
        writers = [threading.Thread(target=bus.publish, args=(record(n),)) for n in range(1, 6)]
        for w in writers:
            w.start()
        for w in writers:
            w.join()
        got = [await sub.next() for _ in range(5)]
        assert set(seen_in) == {loop_thread}
        return sorted(r.seq for r in got if r)

    assert asyncio.run(main()) == [1, 2, 3, 4, 5]


def test_publishing_with_nobody_listening_or_no_loop_does_nothing() -> None:
    bus = EventBus()
    bus.publish(record(1))  # not attached: nothing to do, nothing raised
    assert bus.subscribers == 0


def test_drop_all_hangs_up_on_everyone() -> None:
    async def main() -> None:
        bus = EventBus()
        bus.attach(asyncio.get_running_loop())
        subs = [bus.subscribe(uid, admin=False) for uid in (1, 2, 3)]
        hung_up: list[int] = []
        for sub in subs:
            sub.on_drop = lambda uid=sub.uid: hung_up.append(uid)  # type: ignore[misc]
        bus.drop_all()
        assert sorted(hung_up) == [1, 2, 3]
        assert bus.subscribers == 0
        assert [await s.next() for s in subs] == [None, None, None]

    asyncio.run(main())
