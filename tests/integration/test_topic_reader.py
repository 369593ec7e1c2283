"""The one topic reader on the real broker: latest per key, follow, and the govern role's one
copy of desired state (what the gate and drift both read)."""

from __future__ import annotations

import asyncio

import pytest
from aiokafka import ConsumerRecord

from agents.drift import DriftDetector, desired_state
from agents.gate_facts import ResourceFacts
from agents.shared import SharedState
from schemas import ConfigChange, Decision, DriftFinding
from streams.followed import FollowedTopics
from streams.host_metrics import HostMetrics
from streams.reader import TopicReader, read_latest, read_to_end
from streams.settings import KafkaConfig, Settings
from streams.wiring import AgentContext, rows_of
from tests.integration.records import send_events, send_raw

pytestmark = pytest.mark.kafka


def test_latest_per_key_with_tombstones_and_every_record(kafka_cfg: KafkaConfig) -> None:
    send_raw(kafka_cfg, "drift-ignores", b"a", b"a1", b"a2")
    send_raw(kafka_cfg, "drift-ignores", b"b", b"b1")
    asyncio.run(_tombstone(kafka_cfg, "drift-ignores", b"b"))
    topic = kafka_cfg.topic("drift-ignores")
    latest = asyncio.run(read_latest(kafka_cfg, topic))
    assert [(r.key, r.value) for r in latest] == [(b"a", b"a2")]
    assert len(asyncio.run(read_to_end(kafka_cfg, topic))) == 4


def test_a_reader_catches_up_then_follows(kafka_cfg: KafkaConfig) -> None:
    send_raw(kafka_cfg, "runbooks", b"r", b"1")

    async def scenario() -> list[bytes | None]:
        seen: list[bytes | None] = []
        second = asyncio.Event()

        async def keep(records: list[ConsumerRecord]) -> None:
            seen.extend(r.value for r in records)
            if len(seen) >= 2:
                second.set()

        reader = TopicReader(kafka_cfg, kafka_cfg.topic("runbooks"))
        await reader.start()
        try:
            await reader.catch_up(keep)
            following = asyncio.create_task(reader.follow(keep))
            await asyncio.to_thread(send_raw, kafka_cfg, "runbooks", b"r", b"2")
            await asyncio.wait_for(second.wait(), 30)
            following.cancel()
            await asyncio.gather(following, return_exceptions=True)
        finally:
            await reader.stop()
        return seen

    assert asyncio.run(scenario()) == [b"1", b"2"]


def test_one_desired_update_reaches_the_gate_and_drift(kafka_cfg: KafkaConfig) -> None:
    config = {"size": "m5.large", "tags": {"env": "production"}}
    send_events(kafka_cfg, desired_state("db-1", "aws_db_instance", config, origin="git"))
    shared = SharedState()
    drift_row = next(r for r in rows_of("govern") if r.name == "drift")
    drift = drift_row.make(AgentContext(Settings(), shared, "govern"))
    assert isinstance(drift, DriftDetector)
    followed = FollowedTopics(shared, kafka_cfg, drift_row.follows, metrics=HostMetrics(None),
                              role="govern")
    followed.need("desired")  # the gate's request: the same reader
    facts = ResourceFacts(shared.desired)

    async def scenario() -> None:
        await followed.start()
        try:
            await followed.catch_up()
        finally:
            await followed.stop()

    asyncio.run(scenario())
    context = facts.context_for(Decision(resource_id="db-1", decision_type="scale_up"))
    assert context is not None and context["resource"]["environment"] == "production"
    change = ConfigChange(resource_id="db-1", resource_type="aws_db_instance",
                          config=config | {"size": "m5.xlarge"}, change_source="console")
    assert any(isinstance(e, DriftFinding) for e in drift.on_config(change))


async def _tombstone(cfg: KafkaConfig, logical: str, key: bytes) -> None:
    from streams import kafka_clients

    producer = kafka_clients.producer(cfg, acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(cfg.topic(logical), None, key=key)
    finally:
        await producer.stop()
