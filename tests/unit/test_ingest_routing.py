"""Ingest routing with fixed examples: what reaches the dead-letter topic (read from the
producer the pipeline publishes through), which size limit applies to which topic, and the
dead letters being durable before the offsets that skip them are committed."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from aiokafka import TopicPartition
from prometheus_client import CollectorRegistry

from agents.ingest import INTERNAL_MAX_BYTES, Ingestor, RawRecord, size_limit
from schemas import DeadLetter, Decision, MetricSample
from schemas.codec import Codec
from sinks.backend import MemoryBackend
from streams.app import WorkerContext
from streams.ingest import SinkPipeline
from streams.metrics import WorkerMetrics
from streams.settings import KafkaConfig, Settings
from tests.unit.test_ingest_poison import Producer, Record

SMALL = 4096
"""The producers' size limit of these tests (the internal limit stays INTERNAL_MAX_BYTES)."""


@pytest.fixture
def pipeline() -> Iterator[SinkPipeline]:
    settings = Settings(kafka=KafkaConfig(topic_prefix="r."), max_message_bytes=SMALL)
    ctx = WorkerContext(settings, "ingest", settings.codec(), WorkerMetrics(CollectorRegistry()))
    with ThreadPoolExecutor(1) as pool:
        yield SinkPipeline(ctx, MemoryBackend(), pool)


def _run(pipeline: SinkPipeline, topic: str, values: list[bytes | None]) -> Producer:
    producer = Producer()
    records = [Record(topic, 0, i, b"k", v) for i, v in enumerate(values)]
    asyncio.run(pipeline._process(TopicPartition(topic, 0), records,  # type: ignore[arg-type]
                                  producer))  # type: ignore[arg-type]
    return producer


def _letters(pipeline: SinkPipeline, producer: Producer) -> list[DeadLetter]:
    assert {topic for topic, _ in producer.sent} <= {"r.dlq"}, producer.sent
    return [Codec().decode(raw, DeadLetter) for _, raw in producer.sent]  # letters are large


def test_a_bad_record_goes_to_the_dead_letter_topic_and_good_ones_do_not(
        pipeline: SinkPipeline) -> None:
    good = pipeline.ctx.codec.encode(MetricSample(resource_id="vm-1"))
    producer = _run(pipeline, "r.metrics", [good, b"{not json", good])
    [letter] = _letters(pipeline, producer)
    assert [topic for topic, _ in producer.sent] == ["r.dlq"]
    assert (letter.source_topic, letter.partition, letter.offset) == ("r.metrics", 0, 1)
    assert letter.raw == b"{not json" and letter.error_kind == "decode"
    assert len(pipeline.sink) == 2  # the good records only; the bad one's offset still moves
    assert pipeline.sink.detach().offsets == {("r.metrics", 0): 3}


def test_only_good_records_produce_nothing_on_the_dead_letter_topic(
        pipeline: SinkPipeline) -> None:
    good = pipeline.ctx.codec.encode(MetricSample(resource_id="vm-1"))
    assert _run(pipeline, "r.metrics", [good, good]).sent == []


def test_every_bad_record_is_dead_lettered_once(pipeline: SinkPipeline) -> None:
    producer = _run(pipeline, "r.metrics", [b"x", None, b"[]"])
    assert [(d.offset, d.source_topic) for d in _letters(pipeline, producer)] == [
        (0, "r.metrics"), (1, "r.metrics"), (2, "r.metrics")]


def test_a_bad_record_on_the_dead_letter_topic_is_not_republished(
        pipeline: SinkPipeline) -> None:
    assert _run(pipeline, "r.dlq", [b"{not json"]).sent == []  # no loop through the DLQ


def test_external_topics_get_the_configured_limit_and_internal_ones_the_large_one(
        pipeline: SinkPipeline) -> None:
    codec = pipeline.ctx.codec
    assert size_limit(codec, external=True) == SMALL
    assert size_limit(codec, external=False) == INTERNAL_MAX_BYTES
    assert size_limit(Codec(32 * 1_048_576), external=False) == 32 * 1_048_576  # never lower


def _sized(codec: Codec, event: Any, size: int) -> bytes:
    """The event's JSON padded with whitespace to exactly `size` bytes (still valid JSON)."""
    raw = codec.encode(event)
    assert len(raw) <= size
    return raw + b" " * (size - len(raw))


@pytest.mark.parametrize("size", [SMALL - 1, SMALL])
def test_an_external_record_at_the_limit_is_accepted(pipeline: SinkPipeline, size: int) -> None:
    value = _sized(pipeline.ctx.codec, MetricSample(resource_id="vm-1"), size)
    assert _run(pipeline, "r.metrics", [value]).sent == []
    assert len(pipeline.sink) == 1


def test_an_external_record_over_the_limit_is_dead_lettered(pipeline: SinkPipeline) -> None:
    value = _sized(pipeline.ctx.codec, MetricSample(resource_id="vm-1"), SMALL + 1)
    [letter] = _letters(pipeline, _run(pipeline, "r.metrics", [value]))
    assert letter.error_kind == "oversized" and letter.raw_size == SMALL + 1
    assert str(SMALL) in letter.reason and len(pipeline.sink) == 0


def test_an_internal_record_over_the_external_limit_is_stored(pipeline: SinkPipeline) -> None:
    decision = Decision(resource_id="svc-1", decision_type="scale_up")
    value = _sized(pipeline.ctx.codec, decision, 4 * SMALL)
    assert _run(pipeline, "r.decisions", [value]).sent == []
    assert len(pipeline.sink) == 1


def test_the_ingestor_applies_the_limit_by_topic_kind() -> None:
    codec = Codec(SMALL)
    ingestor = Ingestor(codec)
    raw = _sized(codec, MetricSample(resource_id="vm-1"), SMALL + 1)
    record = RawRecord("r.metrics", 0, 0, None, raw)
    assert isinstance(ingestor.decode(record, MetricSample, external=True), DeadLetter)
    assert isinstance(ingestor.decode(record, MetricSample, external=False), MetricSample)
    huge = _sized(codec, MetricSample(resource_id="vm-1"), INTERNAL_MAX_BYTES + 1)
    letter = ingestor.decode(RawRecord("r.metrics", 0, 0, None, huge), MetricSample, False)
    assert isinstance(letter, DeadLetter) and letter.error_kind == "oversized"


class Consumer:
    """Records when offsets are committed and whether the dead letters were delivered then."""

    def __init__(self, delivered: asyncio.Future[Any]) -> None:
        self.delivered = delivered
        self.commits: list[tuple[dict[TopicPartition, int], bool]] = []

    async def commit(self, offsets: dict[TopicPartition, int]) -> None:
        self.commits.append((offsets, self.delivered.done()))

    def assignment(self) -> set[TopicPartition]:
        return set()


class SlowProducer(Producer):
    """A producer whose deliveries complete a little after `send` returns."""

    def __init__(self) -> None:
        super().__init__()
        self.futures: list[asyncio.Future[Any]] = []

    async def send(self, topic: str, value: bytes, key: bytes | None = None) -> Any:
        self.sent.append((topic, value))
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        loop.call_later(0.05, future.set_result, None)
        self.futures.append(future)
        return future


def test_dead_letters_are_delivered_before_their_offsets_are_committed(
        pipeline: SinkPipeline) -> None:
    async def scenario() -> Consumer:
        producer = SlowProducer()
        records = [Record("r.metrics", 0, 0, b"k", b"{bad")]
        await pipeline._process(TopicPartition("r.metrics", 0), records,  # type: ignore[arg-type]
                                producer)  # type: ignore[arg-type]
        [future] = producer.futures
        consumer = Consumer(future)
        await pipeline._flush(consumer)  # type: ignore[arg-type]
        return consumer

    consumer = asyncio.run(scenario())
    assert consumer.commits == [({TopicPartition("r.metrics", 0): 1}, True)]
