"""Helpers of the host tests: send records with their offsets, read topics and state topics."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Sequence
from typing import TypeVar

from aiokafka import ConsumerRecord, TopicPartition

from schemas import Event
from schemas.codec import Codec
from streams import kafka_clients
from streams.reader import read_to_end
from streams.settings import KafkaConfig
from streams.state import StateMeta

CODEC = Codec()
E = TypeVar("E", bound=Event)


async def _send(cfg: KafkaConfig, logical: str, items: Sequence[tuple[bytes, bytes]]
                ) -> list[tuple[int, int]]:
    producer = kafka_clients.producer(cfg, acks="all")  # the test's own user, if any
    await producer.start()
    try:
        sent = [await producer.send(cfg.topic(logical), value, key=key) for key, value in items]
        return [(m.partition, m.offset) for m in await asyncio.gather(*sent)]
    finally:
        await producer.stop()


def send_events(cfg: KafkaConfig, *events: Event) -> list[tuple[int, int]]:
    """Send events to their topics, keyed; return each one's (partition, offset)."""
    out: list[tuple[int, int]] = []
    for e in events:
        out += asyncio.run(_send(cfg, e.topic, [(e.key.encode(), CODEC.encode(e))]))
    return out


def send_raw(cfg: KafkaConfig, logical: str, key: bytes, *values: bytes) -> list[tuple[int, int]]:
    """Send raw values (what kcat or a broken producer would send) under one key."""
    return asyncio.run(_send(cfg, logical, [(key, v) for v in values]))


def read(cfg: KafkaConfig, logical: str) -> list[ConsumerRecord]:
    """Every record of a topic so far."""
    return asyncio.run(read_to_end(cfg, cfg.topic(logical)))


def events(cfg: KafkaConfig, kind: type[E]) -> list[E]:
    """Every event of a type on its topic so far, decoded."""
    return [CODEC.decode(r.value, kind, max_bytes=16 * 2**20) for r in read(cfg, kind.topic)
            if r.value is not None]


def state(cfg: KafkaConfig, role: str, agent: str) -> dict[str, tuple[bytes | None, StateMeta]]:
    """The latest state record per key of one agent in the role's state topic."""
    out: dict[str, tuple[bytes | None, StateMeta]] = {}
    for r in read(cfg, f"{role}-state"):
        name, _, key = r.key.decode().partition("/")
        if name == agent:
            out[key] = (r.value, StateMeta.from_headers(r.partition, r.headers))
    return out


async def _committed(cfg: KafkaConfig, group: str, topic: str, partition: int) -> int:
    admin = kafka_clients.admin(cfg)
    await admin.start()
    try:
        offsets = await admin.list_consumer_group_offsets(group)
    finally:
        await admin.close()
    found = offsets.get(TopicPartition(topic, partition))
    return -1 if found is None else found.offset


def committed(cfg: KafkaConfig, role: str, logical: str, partition: int) -> int:
    """The next offset a role's consumer group will read on one partition (-1: none committed).

    A host commits an input's offset only after its outputs and due checkpoints are
    acknowledged: a committed offset past a record means the role has fully handled it."""
    return asyncio.run(_committed(cfg, f"{cfg.topic_prefix}{role}", cfg.topic(logical),
                                  partition))


def cli(cfg: KafkaConfig, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """`novacron ARGS` against the test's broker and topic prefix."""
    from tests.integration.conftest import kafka_env

    full = dict(os.environ, **kafka_env(cfg), **env)
    return subprocess.run([sys.executable, "-m", "streams.cli.main", *args], env=full,
                          capture_output=True, text=True, timeout=120)
