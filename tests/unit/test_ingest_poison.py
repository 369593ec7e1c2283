"""A record the sink cannot convert is dead-lettered and the batch goes on (issue 11, finding 3):
the sink's add is all or nothing, and the ingest pipeline keeps every other record."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import orjson
import pytest
from aiokafka import TopicPartition
from prometheus_client import CollectorRegistry

from agents.ingest import Ingestor, RawRecord, RecordLike
from schemas import DeadLetter, Decision, Event, MetricSample
from schemas.edge import EdgeContext
from sinks.audit import AuditChain
from sinks.backend import ChdbBackend, MemoryBackend
from sinks.config import ClickHouseConfig
from sinks.ddl import apply_ddl
from sinks.writer import BatchingSink
from streams.app import WorkerContext
from streams.ingest import SinkPipeline
from streams.metrics import WorkerMetrics
from streams.settings import KafkaConfig, Settings


def unstorable() -> Decision:
    """A decision the edge would refuse (300 levels), built in code: orjson cannot write it."""
    params: Any = 0
    for _ in range(300):
        params = {"a": params}
    return Decision(resource_id="svc-x", decision_type="scale_up", params=params)


class RefusingChain(AuditChain):
    """An audit chain whose next append fails (a details field the chain cannot hash)."""

    def append(self, **entry: Any) -> Any:
        raise TypeError("cannot hash these details")


def test_add_is_all_or_nothing_when_the_row_cannot_be_built() -> None:
    chain = AuditChain()
    sink = BatchingSink(MemoryBackend(), audit=chain)
    with pytest.raises(Exception, match="[Rr]ecursion"):
        sink.add(unstorable(), "t", 0, 0)
    assert len(sink) == 0 and sink.detach().offsets == {} and chain.last_seq == 0


def test_add_is_all_or_nothing_when_the_audit_row_fails() -> None:
    sink = BatchingSink(MemoryBackend(), audit=RefusingChain())
    with pytest.raises(TypeError):
        sink.add(Decision(resource_id="svc", decision_type="scale_up"), "t", 0, 0)
    batch = sink.detach()
    assert batch.rows == {} and batch.offsets == {} and batch.count == 0


@dataclass
class Record:
    """The fields of an aiokafka ConsumerRecord the pipeline reads."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None


class PoisonAtOffset(Ingestor):
    """Decodes normally, except that one offset yields an event the sink cannot store (a
    stand-in for any conversion bug the edge does not catch)."""

    def __init__(self, ingestor: Ingestor, offset: int) -> None:
        super().__init__(ingestor.codec)
        self.offset = offset

    def decode(self, record: RawRecord, expected: type[Event], external: bool = True) -> Event:
        return unstorable() if record.offset == self.offset else super().decode(
            record, expected, external)

    def decode_batch(self, records: Sequence[RecordLike], expected: type[Event],
                     external: bool = True, edge: EdgeContext | None = None) -> list[Event]:
        events = super().decode_batch(records, expected, external, edge)
        pairs = zip(records, events, strict=True)
        return [unstorable() if r.offset == self.offset else e for r, e in pairs]


class Producer:
    """Collects what the pipeline publishes (the dead-letter topic)."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes]] = []

    async def send(self, topic: str, value: bytes, key: bytes | None = None) -> Any:
        self.sent.append((topic, value))
        done = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done


@pytest.fixture(scope="module")
def backend(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChdbBackend]:
    b = ChdbBackend(tmp_path_factory.mktemp("chdb"))
    yield b
    b.close()


@pytest.mark.parametrize("fast", [False, True], ids=["pydantic", "fast-path"])
def test_pipeline_dead_letters_the_unstorable_record_and_keeps_the_batch(
        backend: ChdbBackend, fast: bool) -> None:
    """With the fast path on, the poisoned record is one it defers (no event_time): the batch
    holds fast rows and pydantic rows, and the one-by-one fallback decodes the fast ones too."""
    ch = ClickHouseConfig(path=backend.path, database=f"poison{int(fast)}")
    apply_ddl(backend, ch)
    settings = Settings(kafka=KafkaConfig(topic_prefix="p."), clickhouse=ch,
                        sink={"fast_decode": fast})
    registry = CollectorRegistry()
    ctx = WorkerContext(settings, "ingest", settings.codec(), WorkerMetrics(registry))
    with ThreadPoolExecutor(1) as pool:
        pipeline = SinkPipeline(ctx, backend, pool)
        assert bool(pipeline.fast) == fast
        pipeline.ingestor = PoisonAtOffset(pipeline.ingestor, offset=1)
        producer = Producer()
        values = [ctx.codec.encode(MetricSample(resource_id=f"vm-{i}")) for i in range(3)]
        values[1] = orjson.dumps({"resource_id": "vm-1"})  # deferred by the fast path
        records = [Record("p.metrics", 0, i, b"k", v) for i, v in enumerate(values)]
        asyncio.run(pipeline._process(TopicPartition("p.metrics", 0), records,  # type: ignore[arg-type]
                                      producer))  # type: ignore[arg-type]
        offsets = pipeline.sink.flush()
    assert offsets == {("p.metrics", 0): 3}  # the poison record's offset is committed too
    stored = backend.query(
        f"SELECT resource_id FROM {ch.database}.metric_samples ORDER BY resource_id")
    assert [r["resource_id"] for r in stored] == ["vm-0", "vm-2"]
    [(topic, raw)] = producer.sent
    letter = ctx.codec.decode(raw, DeadLetter)
    assert topic == "p.dlq" and (letter.source_topic, letter.offset) == ("p.metrics", 1)
    assert letter.error_kind == "processing" and letter.raw == values[1]
    assert letter.reason.startswith("cannot store the Decision in the history: ")
    assert orjson.loads(letter.raw)["resource_id"] == "vm-1"
    decoded = {path: registry.get_sample_value(
        "novacron_sink_decoded_total", {"topic": "metrics", "path": path}) for path in
        ("fast", "pydantic")}
    assert decoded == ({"fast": 2.0, "pydantic": 1.0} if fast else
                       {"fast": None, "pydantic": 3.0})


class BrokenFastPath:
    """A fast decode path with a bug: every batch it sees raises."""

    def decode(self, *args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("a bug in the pre-filter")


def test_a_failing_fast_path_sends_the_whole_batch_through_pydantic(
        backend: ChdbBackend, caplog: pytest.LogCaptureFixture) -> None:
    """A fault of the pre-filter costs no record: pydantic decodes, stores and dead-letters
    the batch as it would without the fast path, and the fault is logged."""
    ch = ClickHouseConfig(path=backend.path, database="brokenfast")
    apply_ddl(backend, ch)
    settings = Settings(kafka=KafkaConfig(topic_prefix="p."), clickhouse=ch)
    registry = CollectorRegistry()
    ctx = WorkerContext(settings, "ingest", settings.codec(), WorkerMetrics(registry))
    with ThreadPoolExecutor(1) as pool:
        pipeline = SinkPipeline(ctx, backend, pool)
        assert MetricSample in pipeline.fast  # on by default
        pipeline.fast[MetricSample] = BrokenFastPath()  # type: ignore[assignment]
        producer = Producer()
        values = [ctx.codec.encode(MetricSample(resource_id=f"vm-{i}")) for i in range(3)]
        values[1] = b'{"resource_id": "vm-1", "cpu_usage": true}'  # pydantic refuses it
        records = [Record("p.metrics", 0, i, b"k", v) for i, v in enumerate(values)]
        asyncio.run(pipeline._process(TopicPartition("p.metrics", 0), records,  # type: ignore[arg-type]
                                      producer))  # type: ignore[arg-type]
        offsets = pipeline.sink.flush()
    assert offsets == {("p.metrics", 0): 3}
    stored = backend.query(
        f"SELECT resource_id FROM {ch.database}.metric_samples ORDER BY resource_id")
    assert [r["resource_id"] for r in stored] == ["vm-0", "vm-2"]
    [(topic, raw)] = producer.sent
    letter = ctx.codec.decode(raw, DeadLetter)
    assert topic == "p.dlq" and letter.offset == 1 and "cpu_usage" in letter.reason
    assert "the fast decode path failed" in caplog.text
    assert registry.get_sample_value(
        "novacron_sink_decoded_total", {"topic": "metrics", "path": "pydantic"}) == 3.0
