"""Where the collect role's events go: Kafka with acks=all (or a memory fake for tests), and the
compacted topic that keeps open alerts across restarts."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Protocol

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from schemas import Event
from schemas.codec import Codec
from schemas.errors import BackendUnavailable
from streams import kafka_clients
from streams.reader import read_to_end
from streams.settings import Settings

__all__ = [
    "STATE_TOPIC",
    "KafkaPublisher",
    "MemoryPublisher",
    "Publisher",
    "StateRecord",
    "load_state",
]

STATE_TOPIC = "collect-state"
"""Compacted topic of open alerts (key: fingerprint; a tombstone closes one)."""

StateRecord = tuple[str, bytes | None]


class Publisher(Protocol):
    """Where the collector's events go; raises BackendUnavailable when they cannot be acked."""

    async def publish(self, events: Sequence[Event], state: Sequence[StateRecord] = ()) -> None:
        """Send events (and state records) and return once every one is acknowledged."""
        ...


PUBLISH_LINGER_MS = 5
"""How long the publisher waits to fill a produce request: one request carries many samples
from the receivers' concurrent requests (the workers' own hops send without a linger)."""


class KafkaPublisher:
    """Publishes to the events' topics with acks=all, bounded by a timeout."""

    def __init__(self, settings: Settings, codec: Codec, timeout: float) -> None:
        self.settings = settings
        self.codec = codec
        self.timeout = timeout
        self._producer: AIOKafkaProducer | None = None
        self._lock = asyncio.Lock()

    async def _ensure(self) -> AIOKafkaProducer:
        async with self._lock:
            if self._producer is None:
                producer = kafka_clients.producer(
                    self.settings.kafka,
                    acks="all",
                    linger_ms=PUBLISH_LINGER_MS,
                    max_batch_size=256 * 1024,
                    request_timeout_ms=int(self.timeout * 1000),
                )
                try:
                    await producer.start()
                except BaseException:
                    await producer.stop()
                    raise
                self._producer = producer
        return self._producer

    async def publish(self, events: Sequence[Event], state: Sequence[StateRecord] = ()) -> None:
        try:
            await asyncio.wait_for(self._send(events, state), self.timeout)
        except (TimeoutError, KafkaError, OSError) as exc:
            raise BackendUnavailable(f"Kafka did not acknowledge: {exc!r}") from exc

    async def _send(self, events: Sequence[Event], state: Sequence[StateRecord]) -> None:
        producer = await self._ensure()
        topic = self.settings.kafka.topic
        futures = [
            await producer.send(topic(e.topic), self.codec.encode(e.stamped()), key=e.key.encode())
            for e in events
        ]
        for key, blob in state:
            futures.append(await producer.send(topic(STATE_TOPIC), blob, key=key.encode()))
        if futures:
            await asyncio.gather(*futures)

    async def stop(self) -> None:
        """Flush and close the producer."""
        if self._producer is not None:
            await self._producer.stop()
            self._producer = None


async def load_state(settings: Settings) -> list[StateRecord]:
    """Every record of the compacted alert-state topic, oldest first (read to its end offsets)."""
    records = await read_to_end(settings.kafka, settings.kafka.topic(STATE_TOPIC))
    return [(r.key.decode(), r.value) for r in records if r.key]


class MemoryPublisher:
    """The fake `Publisher` for tests: keeps what it was given; `down` makes it refuse."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self.state: list[StateRecord] = []
        self.down = False

    async def publish(self, events: Sequence[Event], state: Sequence[StateRecord] = ()) -> None:
        if self.down:
            raise BackendUnavailable("the memory publisher is down")
        self.events.extend(events)
        self.state.extend(state)
