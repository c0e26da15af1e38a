"""A subscription served on guardd's socket: the records a peer may see, one line each.

The peer sends nothing after its subscribe request: anything it sends, or its going away,
ends the subscription. A peer that does not read fast enough has its queue fill up and is
dropped by the bus; a write that cannot complete within WRITE_TIMEOUT_S ends it too.
"""

from __future__ import annotations

import asyncio
import contextlib

from guardd.events.bus import EventBus, Subscriber
from guardd.ipc.protocol import encode_event

WRITE_TIMEOUT_S = 10.0


class Feed:
    """One subscriber's stream (the socket server's Stream)."""

    def __init__(self, bus: EventBus, subscriber: Subscriber, head_seq: int) -> None:
        self._bus = bus
        self._subscriber = subscriber
        self.ack: object = {"subscribed": True, "seq": head_seq}

    async def run(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Send records until the peer goes, speaks, or falls behind."""
        self._subscriber.on_drop = writer.transport.abort
        sending = asyncio.ensure_future(self._send(writer))
        listening = asyncio.ensure_future(reader.read(1))
        try:
            await asyncio.wait({sending, listening}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (sending, listening):
                task.cancel()
            for task in (sending, listening):
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task

    async def _send(self, writer: asyncio.StreamWriter) -> None:
        while (record := await self._subscriber.next()) is not None:
            writer.write(encode_event(record.seq, record.ts, record.event, record.data))
            await asyncio.wait_for(writer.drain(), WRITE_TIMEOUT_S)

    def close(self) -> None:
        """Leave the bus."""
        self._subscriber.drop()
        self._bus.unsubscribe(self._subscriber)
