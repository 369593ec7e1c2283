"""The emitter stamps every event it sends with its processing time, on the real broker."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from schemas import Decision, MetricSample
from schemas.envelope import utc_now
from streams.emit import Emitter
from streams.settings import KafkaConfig, Settings
from tests.integration.records import CODEC, events

pytestmark = pytest.mark.kafka


async def _emit(cfg: KafkaConfig, *sent: Decision) -> None:
    emitter = Emitter(Settings(kafka=cfg), CODEC)
    try:
        await emitter.emit(sent)
    finally:
        await emitter.stop()


def test_every_emitted_event_carries_when_it_was_produced(kafka_cfg: KafkaConfig) -> None:
    sample = MetricSample(resource_id="vm-1", cpu_usage=95)
    claimed = datetime(2026, 1, 1, tzinfo=UTC)  # what an input said: never kept
    decisions = [Decision.caused_by(sample, resource_id=f"svc-{i}", decision_type="scale_up",
                                    produced_at=claimed) for i in range(3)]
    before = utc_now()
    asyncio.run(_emit(kafka_cfg, *decisions))
    after = utc_now()
    got = events(kafka_cfg, Decision)
    assert sorted(d.resource_id for d in got) == ["svc-0", "svc-1", "svc-2"]
    for d in got:
        assert d.produced_at is not None and before <= d.produced_at <= after
        assert d.causation_id == sample.event_id
