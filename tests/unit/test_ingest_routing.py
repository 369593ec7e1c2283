"""Ingest routing with fixed examples: what reaches the dead-letter topic (read from the
producer the pipeline publishes through), which size limit applies to which topic, and the
dead letters being durable before the offsets that skip them are committed."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

import pytest
from aiokafka import TopicPartition
from prometheus_client import CollectorRegistry

from agents.ingest import (
    DLQ_RAW_LIMIT,
    INTERNAL_MAX_BYTES,
    Ingestor,
    RawRecord,
    record_event_id,
    size_limit,
)
from schemas import DeadLetter, Decision, MetricSample
from schemas.codec import Codec
from sinks.backend import MemoryBackend
from streams.app import WorkerContext
from streams.ingest import SinkPipeline
from streams.metrics import WorkerMetrics
from streams.settings import KafkaConfig, Settings
from tests.unit.test_ingest_poison import PoisonAtOffset, Producer, Record

SMALL = 4096
"""The producers' size limit of these tests (the internal limit stays INTERNAL_MAX_BYTES)."""


class KeyedProducer(Producer):
    """Also records the key of every record sent."""

    def __init__(self) -> None:
        super().__init__()
        self.keys: list[bytes | None] = []

    async def send(self, topic: str, value: bytes, key: bytes | None = None) -> Any:
        self.keys.append(key)
        return await super().send(topic, value, key)


@pytest.fixture
def pipeline() -> Iterator[SinkPipeline]:
    settings = Settings(kafka=KafkaConfig(topic_prefix="r."), max_message_bytes=SMALL)
    ctx = WorkerContext(settings, "ingest", settings.codec(), WorkerMetrics(CollectorRegistry()))
    with ThreadPoolExecutor(1) as pool:
        yield SinkPipeline(ctx, MemoryBackend(), pool)


def _run(pipeline: SinkPipeline, topic: str, values: list[bytes | None]) -> KeyedProducer:
    producer = KeyedProducer()
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


# --- what a dead letter carries --------------------------------------------------------------


def test_an_event_without_an_id_gets_its_record_position_as_id() -> None:
    codec = Codec()
    raw = b'{"event_type": "MetricSample", "resource_id": "vm-1"}'
    event = Ingestor(codec).decode(RawRecord("r.metrics", 3, 41, None, raw), MetricSample)
    assert event.event_id == record_event_id("r.metrics", 3, 41)
    assert len({record_event_id("t", 0, 1), record_event_id("u", 0, 1),
                record_event_id("t", 1, 1), record_event_id("t", 0, 2)}) == 4
    assert record_event_id("t", 0, 1) == record_event_id("t", 0, 1)


def test_the_ingestor_treats_topics_as_external_unless_told() -> None:
    codec = Codec(SMALL)
    raw = _sized(codec, MetricSample(resource_id="vm-1"), SMALL + 1)
    assert isinstance(Ingestor(codec).decode(RawRecord("t", 0, 0, None, raw), MetricSample),
                      DeadLetter)


def test_a_dead_letter_keeps_the_position_source_time_and_bounded_copies() -> None:
    ingestor = Ingestor(Codec())
    key = b"\xff" + b"k" * 1100  # not UTF-8, and longer than the 1,024 characters kept
    raw = b"x" * (DLQ_RAW_LIMIT + 5)
    record = RawRecord("r.metrics", 2, 9, key, raw, timestamp_ms=1_767_225_600_500)
    letter = ingestor.dead_letter(record, "r" * 9000, "decode", "id-1")
    assert (letter.event_id, letter.source, letter.source_topic) == ("id-1", "novacron.ingest",
                                                                     "r.metrics")
    assert (letter.partition, letter.offset, letter.error_kind) == (2, 9, "decode")
    assert letter.event_time == datetime(2026, 1, 1, 0, 0, 0, 500_000, tzinfo=UTC)
    assert letter.reason == "r" * 8192
    assert letter.raw == raw[:DLQ_RAW_LIMIT] and letter.raw_size == DLQ_RAW_LIMIT + 5
    assert letter.source_key == "\ufffd" + "k" * 1023  # undecodable bytes replaced, then cut
    assert Ingestor(Codec(), source="novacron.learn").dead_letter(
        record, "r", "decode", "id").source == "novacron.learn"


def test_a_dead_letters_time_is_utc_whatever_the_local_zone(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TZ", "Asia/Tokyo")
    time.tzset()
    try:
        record = RawRecord("t", 0, 0, None, b"x", timestamp_ms=1_767_225_600_000)
        letter = Ingestor(Codec()).dead_letter(record, "r", "decode", "id")
    finally:
        monkeypatch.undo()
        time.tzset()
    assert letter.event_time == datetime(2026, 1, 1, tzinfo=UTC)


def test_a_dead_letter_of_an_empty_record() -> None:
    letter = Ingestor(Codec()).dead_letter(RawRecord("t", 0, 0, None, None), "empty", "decode",
                                           "id-2")
    assert letter.raw == b"" and letter.raw_size == 0 and letter.source_key is None
    assert letter.event_time.tzinfo is not None  # now, when the record has no timestamp


def test_decode_dead_letters_with_the_position_id() -> None:
    letter = Ingestor(Codec()).decode(RawRecord("r.metrics", 1, 5, b"key", b"{bad"),
                                      MetricSample)
    assert isinstance(letter, DeadLetter)
    assert letter.event_id == record_event_id("r.metrics", 1, 5)
    assert letter.source_key == "key"


# --- records the sink cannot store, metrics, logs and the DLQ key -----------------------------


def _poisoned(pipeline: SinkPipeline, topic: str, count: int) -> KeyedProducer:
    pipeline.fast = {}  # the poison is planted in the pydantic path (test_ingest_poison: both)
    pipeline.ingestor = PoisonAtOffset(pipeline.ingestor, offset=1)
    good = pipeline.ctx.codec.encode(MetricSample(resource_id="vm-1"))
    producer = KeyedProducer()
    records = [Record(topic, 0, i, b"k", good) for i in range(count)]
    asyncio.run(pipeline._process(TopicPartition(topic, 0), records,  # type: ignore[arg-type]
                                  producer))  # type: ignore[arg-type]
    return producer


def test_an_unstorable_record_is_dead_lettered_with_its_position_and_logged(
        pipeline: SinkPipeline, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level("INFO", logger="streams.ingest"):
        producer = _poisoned(pipeline, "r.metrics", 3)
    [letter] = _letters(pipeline, producer)
    assert (letter.source_topic, letter.partition, letter.offset) == ("r.metrics", 0, 1)
    assert letter.event_id == record_event_id("r.metrics", 0, 1) and letter.source_key == "k"
    assert letter.error_kind == "processing"
    assert re.fullmatch(r"cannot store the Decision in the history: TypeError: Recursion.*",
                    letter.reason), letter.reason
    assert producer.keys == [letter.key.encode()]
    assert len(pipeline.sink) == 2 and pipeline.sink.detach().offsets == {("r.metrics", 0): 3}
    messages = [r.getMessage() for r in caplog.records]
    assert "cannot store r.metrics[0]@1: TypeError('Recursion limit reached')" in messages
    assert f"dead-lettered r.metrics[0]@1: {letter.reason}" in messages


def test_an_unstorable_dead_letter_is_only_logged(pipeline: SinkPipeline) -> None:
    producer = _poisoned(pipeline, "r.dlq", 2)
    assert producer.sent == []
    assert pipeline.sink.detach().offsets == {("r.dlq", 0): 2}


def test_dead_letters_and_events_are_counted_by_topic_and_kind(pipeline: SinkPipeline) -> None:
    registry = CollectorRegistry()
    pipeline.ctx.metrics = WorkerMetrics(registry)
    good = pipeline.ctx.codec.encode(MetricSample(resource_id="vm-1"))
    producer = _run(pipeline, "r.metrics", [good, b"{bad", b"x" * (SMALL + 1)])
    [first, second] = _letters(pipeline, producer)
    assert producer.keys == [first.key.encode(), second.key.encode()]
    value = registry.get_sample_value
    assert value("novacron_events_processed_total", {"agent": "ingest", "topic": "metrics"}) == 3
    assert value("novacron_dlq_total", {"topic": "r.metrics", "kind": "decode"}) == 1
    assert value("novacron_dlq_total", {"topic": "r.metrics", "kind": "oversized"}) == 1
    assert (first.error_kind, second.error_kind) == ("decode", "oversized")


def test_a_flush_marks_clickhouse_healthy_and_counts_the_rows(pipeline: SinkPipeline) -> None:
    registry = CollectorRegistry()
    pipeline.ctx.metrics = WorkerMetrics(registry)
    pipeline.ctx.health["clickhouse"] = "unavailable: test"
    good = pipeline.ctx.codec.encode(MetricSample(resource_id="vm-1"))
    _run(pipeline, "r.metrics", [good, good])

    async def flush() -> Consumer:
        done = asyncio.get_running_loop().create_future()
        done.set_result(None)
        consumer = Consumer(done)
        await pipeline._flush(consumer)  # type: ignore[arg-type]
        return consumer

    consumer = asyncio.run(flush())
    assert consumer.commits == [({TopicPartition("r.metrics", 0): 2}, True)]
    assert pipeline.ctx.health["clickhouse"] == "ok"
    assert registry.get_sample_value("novacron_sink_rows_total", {"table": "all"}) == 2
    assert registry.get_sample_value("novacron_sink_batches_total") == 1
    _run(pipeline, "r.metrics", [good, good, good])
    asyncio.run(flush())  # the counter grows by this batch's rows only
    assert registry.get_sample_value("novacron_sink_rows_total", {"table": "all"}) == 5
