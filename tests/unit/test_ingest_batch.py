"""The batch path of ingest (issue 17): a poll batch is validated in one call and buffered
column-wise, with the same events, ids, rows and dead letters as record by record."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from aiokafka import TopicPartition
from prometheus_client import CollectorRegistry

from agents.ingest import Ingestor, RawRecord, record_event_id
from schemas import DeadLetter, Decision, Event, MetricSample
from schemas.codec import Codec
from schemas.errors import DeadLetterError
from sinks.audit import AuditChain
from sinks.backend import MemoryBackend
from sinks.columns import ColumnBlock, arrow_type, event_columns
from sinks.ddl import TABLES
from sinks.rows import to_row
from sinks.writer import BatchingSink
from streams.app import WorkerContext
from streams.ingest import SinkPipeline
from streams.metrics import WorkerMetrics
from streams.settings import KafkaConfig, Settings
from tests.unit.test_ingest_poison import Producer, Record, unstorable
from tests.unit.test_sinks_examples import EXAMPLES

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def sample(i: int, **fields: Any) -> MetricSample:
    fields.setdefault("event_time", NOW)
    return MetricSample(resource_id=f"vm-{i}", cpu_usage=float(i), **fields)


def without(raw: bytes, *fields: str) -> bytes:
    data = orjson.loads(raw)
    for field in fields:
        del data[field]
    return orjson.dumps(data)


def mixed_values(codec: Codec) -> list[bytes | None]:
    """Good records around every kind of bad one, plus a record without an id and an Avro one."""
    good = [codec.encode(sample(i)) for i in range(4)]
    too_hot = orjson.loads(good[0])
    too_hot["cpu_usage"] = 250.0
    return [
        good[0],
        b"{not json",  # decode
        orjson.dumps(too_hot),  # schema: cpu above 100
        without(good[1], "event_id"),  # gets its position id
        None,  # tombstone
        codec.encode(sample(9), "avro"),
        orjson.dumps({**orjson.loads(good[2]), "event_type": "Decision"}),  # wrong type
        good[3],
    ]


def records(values: list[bytes | None], topic: str = "b.metrics") -> list[RawRecord]:
    return [RawRecord(topic, 3, 100 + i, b"k", v) for i, v in enumerate(values)]


def letter_fields(event: Event) -> tuple[Any, ...]:
    assert isinstance(event, DeadLetter)  # its event_time is the decode time: not compared
    return (event.event_id, event.reason, event.error_kind, event.offset, event.raw)


def test_a_batch_decodes_to_exactly_what_record_by_record_decoding_gives() -> None:
    codec = Codec(clock=lambda: NOW)
    batch = records(mixed_values(codec))
    ingestor = Ingestor(codec)
    together = ingestor.decode_batch(batch, MetricSample)
    one_by_one = [ingestor.decode(r, MetricSample) for r in batch]
    assert [type(e) for e in together] == [type(e) for e in one_by_one]
    for a, b in zip(together, one_by_one, strict=True):
        assert letter_fields(a) == letter_fields(b) if isinstance(a, DeadLetter) else a == b
    kinds = [e.error_kind for e in together if isinstance(e, DeadLetter)]
    assert kinds == ["decode", "schema", "decode", "schema"]
    assert together[3].event_id == record_event_id("b.metrics", 3, 103)  # position-derived


def test_one_bad_record_in_the_middle_leaves_the_others_valid() -> None:
    codec = Codec(clock=lambda: NOW)
    values = [codec.encode(sample(i)) for i in range(5)]
    bad = orjson.loads(values[2])
    bad["resource_id"] = "vm\n2"
    values[2] = orjson.dumps(bad)
    out = codec.decode_batch(values, MetricSample)
    assert [type(e).__name__ for e in out] == ["MetricSample"] * 2 + ["SchemaViolation"] + [
        "MetricSample"] * 2
    assert [e.resource_id for e in out if isinstance(e, MetricSample)] == [
        "vm-0", "vm-1", "vm-3", "vm-4"]
    problem = out[2]
    assert isinstance(problem, DeadLetterError)
    with pytest.raises(DeadLetterError) as alone:
        codec.decode(values[2], MetricSample)
    assert problem.reason == alone.value.reason and "resource_id" in problem.reason


def test_the_time_window_of_a_batch_is_judged_against_one_clock_reading() -> None:
    readings: list[datetime] = []

    def clock() -> datetime:
        readings.append(NOW)
        return NOW

    codec = Codec(clock=clock)
    old = sample(1, event_time=NOW - timedelta(days=400))
    values = [codec.encode(sample(0)), codec.encode(old), codec.encode(sample(2))]
    out = codec.decode_batch(values, MetricSample)
    assert len(readings) == 1  # not one per record, and not again for the per-record retry
    assert isinstance(out[1], DeadLetterError) and "history retention" in out[1].reason
    assert isinstance(out[0], MetricSample) and isinstance(out[2], MetricSample)


def test_an_empty_batch_decodes_to_nothing() -> None:
    assert Codec().decode_batch([], MetricSample) == []


@pytest.mark.parametrize("event_type", sorted(EXAMPLES))
def test_columns_hold_what_to_row_puts_in_each_row(event_type: str) -> None:
    event = EXAMPLES[event_type]
    block = ColumnBlock(event_type)
    block.extend(event_columns(event_type, [event, event]))
    assert len(block) == 2 and block.rows() == [to_row(event), to_row(event)]


def test_every_history_column_has_an_arrow_type() -> None:
    for spec in TABLES.values():
        for column in spec.columns:
            if column.name != "ingested_at":  # filled by ClickHouse
                assert arrow_type(column.ch_type) is not None


def test_add_batch_buffers_rows_audit_entries_and_offsets_like_add_one_by_one() -> None:
    events = [EXAMPLES["MetricSample"], EXAMPLES["Decision"], EXAMPLES["Action"]]
    together = BatchingSink(MemoryBackend(), audit=AuditChain())
    together.add_batch(events, "t", 0, [5, 6, 7])
    alone = BatchingSink(MemoryBackend(), audit=AuditChain())
    for offset, event in enumerate(events, start=5):
        alone.add(event, "t", 0, offset)
    assert len(together) == len(alone) == 3
    a, b = together.detach(), alone.detach()
    assert a.offsets == b.offsets == {("t", 0): 8}
    assert a.rows == b.rows  # the audit rows, same chain
    assert {t: k.rows() for t, k in a.blocks.items()} == {t: k.rows() for t, k in b.blocks.items()}


def test_add_batch_is_all_or_nothing() -> None:
    chain = AuditChain()
    sink = BatchingSink(MemoryBackend(), audit=chain)
    good = Decision(resource_id="svc", decision_type="scale_up")
    with pytest.raises(Exception, match="[Rr]ecursion"):
        sink.add_batch([good, unstorable(), good], "t", 0, [0, 1, 2])
    batch = sink.detach()
    assert (batch.count, batch.offsets, batch.rows, batch.blocks) == (0, {}, {}, {})
    assert chain.last_seq == 0


@pytest.fixture
def pipeline() -> Iterator[SinkPipeline]:
    settings = Settings(kafka=KafkaConfig(topic_prefix="b."))
    ctx = WorkerContext(settings, "ingest", settings.codec(), WorkerMetrics(CollectorRegistry()))
    with ThreadPoolExecutor(1) as pool:
        yield SinkPipeline(ctx, MemoryBackend(), pool)


def process(pipeline: SinkPipeline, values: list[bytes | None]) -> Producer:
    producer = Producer()
    batch = [Record("b.metrics", 0, i, b"k", v) for i, v in enumerate(values)]
    asyncio.run(pipeline._process(TopicPartition("b.metrics", 0), batch,  # type: ignore[arg-type]
                                  producer))  # type: ignore[arg-type]
    return producer


def test_the_pipeline_stores_the_batch_around_a_bad_record_and_dead_letters_it(
        pipeline: SinkPipeline) -> None:
    codec = pipeline.ctx.codec
    now = datetime.now(UTC).replace(microsecond=0)
    events = [MetricSample(event_time=now, resource_id=f"vm-{i}") for i in range(5)]
    values: list[bytes | None] = [codec.encode(e) for e in events]
    values[2] = b'{"resource_id": "vm-2", "cpu_usage": true}'
    producer = process(pipeline, values)
    [(topic, raw)] = producer.sent
    letter = codec.decode(raw, DeadLetter)
    assert topic == "b.dlq" and (letter.offset, letter.error_kind) == (2, "schema")
    assert letter.raw == values[2] and "a boolean is not a number" in letter.reason
    batch = pipeline.sink.detach()
    assert batch.offsets == {("b.metrics", 0): 5}  # the bad record's offset is committed too
    [block] = batch.blocks.values()
    assert block.rows() == [to_row(e) for i, e in enumerate(events) if i != 2]


def test_the_pipeline_gives_an_id_less_record_its_position_id(pipeline: SinkPipeline) -> None:
    event = MetricSample(resource_id="vm-1")
    raw = without(pipeline.ctx.codec.encode(event), "event_id", "correlation_id")
    assert process(pipeline, [raw]).sent == []
    [row] = next(iter(pipeline.sink.detach().blocks.values())).rows()
    assert row["event_id"] == record_event_id("b.metrics", 0, 0) == row["correlation_id"]
