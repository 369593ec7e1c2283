"""Publish events to their topics from short-lived CLI processes (baselines, approvals)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

from aiokafka import AIOKafkaProducer

from schemas import Event
from schemas.codec import WireFormat
from streams.settings import Settings

__all__ = ["publish", "publish_async"]


async def publish_async(
    events: Iterable[Event], settings: Settings, fmt: WireFormat = "json"
) -> int:
    """Send events to their topics (keyed), wait for every ack; return how many were sent."""
    codec = settings.codec()
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka.bootstrap, acks="all")
    await producer.start()
    try:
        futures = [
            await producer.send(
                settings.kafka.topic(event.topic), codec.encode(event, fmt), key=event.key.encode()
            )
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
