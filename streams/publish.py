"""Publish from short-lived CLI processes: events to their topics, records to compacted ones."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from schemas import Event
from schemas.codec import WireFormat
from streams import kafka_clients
from streams.settings import Settings

__all__ = ["KafkaRecordTopic", "MemoryRecordTopic", "Record", "RecordTopic", "publish",
           "publish_async"]


async def publish_async(
    events: Iterable[Event], settings: Settings, fmt: WireFormat = "json"
) -> int:
    """Send events to their topics (keyed), wait for every ack; return how many were sent."""
    codec = settings.codec()
    producer = kafka_clients.producer(settings.kafka, acks="all")
    await producer.start()
    try:
        futures = [
            await producer.send(settings.kafka.topic(event.topic),
                                codec.encode(event.stamped(), fmt), key=event.key.encode())
            for event in events
        ]
        await asyncio.gather(*futures)
        return len(futures)
    finally:
        await producer.stop()


def publish(
    events: Iterable[Event], settings: Settings | None = None, fmt: WireFormat = "json"
) -> int:
    """Blocking wrapper of `publish_async` for CLI commands."""
    return asyncio.run(publish_async(list(events), settings or Settings(), fmt))


Record = tuple[bytes, bytes | None]
"""A key and a value (None: a tombstone) of a compacted topic."""


class RecordTopic(Protocol):
    """A compacted topic of plain records the CLI reads in full and writes to."""

    def read(self) -> list[Record]:
        """Every record, in offset order per partition."""
        ...

    def write(self, records: Sequence[Record]) -> None:
        """Send records and return once each is acknowledged."""
        ...


class KafkaRecordTopic:
    """A RecordTopic on the broker (`drift-ignores`, `model-versions`)."""

    def __init__(self, settings: Settings, logical: str) -> None:
        self.settings, self.name = settings, settings.kafka.topic(logical)

    def read(self) -> list[Record]:
        from streams.reader import read_to_end

        records = asyncio.run(read_to_end(self.settings.kafka, self.name))
        return [(r.key, r.value) for r in records if r.key is not None]

    def write(self, records: Sequence[Record]) -> None:
        asyncio.run(self._write(records))

    async def _write(self, records: Sequence[Record]) -> None:
        producer = kafka_clients.producer(self.settings.kafka, acks="all")
        await producer.start()
        try:
            sent = [await producer.send(self.name, value, key=key) for key, value in records]
            await asyncio.gather(*sent)
        finally:
            await producer.stop()


@dataclass
class MemoryRecordTopic:
    """An in-memory RecordTopic for unit tests."""

    records: list[Record] = field(default_factory=list)

    def read(self) -> list[Record]:
        return list(self.records)

    def write(self, records: Sequence[Record]) -> None:
        self.records.extend(records)
