"""Ingest routing read back from the broker: a bad record's dead letter is on the DLQ topic
itself (not only in the dead_letters table), a good record's is not."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from prometheus_client import CollectorRegistry

from schemas import DeadLetter, MetricSample
from sinks.backend import MemoryBackend
from streams.app import WorkerContext
from streams.ingest import SinkPipeline
from streams.metrics import WorkerMetrics
from streams.settings import KafkaConfig, Settings
from tests.unit.test_ingest_poison import Record


async def _read_all(bootstrap: str, topic: str) -> list[bytes]:
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap,
                                auto_offset_reset="earliest", enable_auto_commit=False)
    await consumer.start()
    try:
        values: list[bytes] = []
        idle = 0
        while idle < 10:  # ~2 s without a new record after the last one
            batch = await consumer.getmany(timeout_ms=200)
            got = [r.value for recs in batch.values() for r in recs if r.value is not None]
            values += got
            idle = 0 if got else idle + 1
        return values
    finally:
        await consumer.stop()


def test_a_bad_record_is_dead_lettered_on_the_dlq_topic(kafka_cfg: KafkaConfig) -> None:
    settings = Settings(kafka=kafka_cfg)
    ctx = WorkerContext(settings, "ingest", settings.codec(), WorkerMetrics(CollectorRegistry()))
    metrics, dlq = ctx.topic("metrics"), ctx.topic("dlq")
    good = ctx.codec.encode(MetricSample(resource_id="vm-1"))
    records = [Record(metrics, 2, 7, b"k", good), Record(metrics, 2, 8, b"k", b"{not json")]

    async def scenario() -> list[bytes]:
        producer = AIOKafkaProducer(bootstrap_servers=kafka_cfg.bootstrap, acks="all")
        await producer.start()
        try:
            with ThreadPoolExecutor(1) as pool:
                pipeline = SinkPipeline(ctx, MemoryBackend(), pool)
                await pipeline._process(TopicPartition(metrics, 2), records,  # type: ignore[arg-type]
                                        producer)
                await asyncio.gather(*pipeline._dlq_sends)
        finally:
            await producer.stop()
        return await _read_all(kafka_cfg.bootstrap, dlq)

    [raw] = asyncio.run(scenario())
    letter = ctx.codec.decode(raw, DeadLetter)
    assert (letter.source_topic, letter.partition, letter.offset) == (metrics, 2, 8)
    assert letter.raw == b"{not json" and letter.error_kind == "decode"
