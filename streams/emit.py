"""Batched sends of events to their topics: one producer per process, one await per batch."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

from aiokafka import AIOKafkaProducer

from schemas import Event
from schemas.codec import Codec, WireFormat
from streams import kafka_clients
from streams.settings import Settings

__all__ = ["Emitter"]


class Emitter:
    """Sends events keyed to their own topics; `emit` returns once every send is acknowledged.

    Agents call it once per input batch (inside `stream.take(...)`), so outputs are durable
    before Faust commits the offsets of the inputs that caused them (at-least-once, no
    per-event awaited send on the hot path).
    """

    def __init__(self, settings: Settings, codec: Codec, fmt: WireFormat = "json") -> None:
        self.settings = settings
        self.codec = codec
        self.fmt = fmt
        self._producer: AIOKafkaProducer | None = None
        self._lock = asyncio.Lock()

    async def _ensure(self) -> AIOKafkaProducer:
        async with self._lock:
            if self._producer is None:
                producer = kafka_clients.producer(self.settings.kafka, acks="all",
                                                  linger_ms=self.settings.kafka.linger_ms)
                await producer.start()
                self._producer = producer
        return self._producer

    async def emit(self, events: Iterable[Event]) -> int:
        """Send the events and wait for all acknowledgements; return how many were sent."""
        producer = await self._ensure()
        kafka = self.settings.kafka
        futures = [
            await producer.send(
                kafka.topic(e.topic), self.codec.encode(e.stamped(), self.fmt), key=e.key.encode()
            )
            for e in events
        ]
        if futures:
            await asyncio.gather(*futures)
        return len(futures)

    async def send_raw(self, topic: str, key: bytes, value: bytes | None) -> None:
        """Send one raw record (state snapshots, tombstones) and wait for the ack."""
        producer = await self._ensure()
        await (await producer.send(self.settings.kafka.topic(topic), value, key=key))

    async def stop(self) -> None:
        """Flush and close the producer."""
        if self._producer is not None:
            await self._producer.stop()
            self._producer = None
