"""On the real broker, the ingest pipeline stores the same rows and dead letters with the fast
decode path (`sink.fast_decode`) as without it, from the same records."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaProducer

from schemas import MetricSample
from schemas.codec import Codec
from sinks.backend import ChdbBackend
from sinks.config import ClickHouseConfig, SinkConfig
from sinks.ddl import apply_ddl
from streams import ingest as ingest_module
from streams.app import WorkerContext
from streams.ingest import SinkPipeline
from streams.metrics import WorkerMetrics
from streams.settings import KafkaConfig, Settings

pytestmark = pytest.mark.kafka
CODEC = Codec()
ROWS = "SELECT * EXCEPT ingested_at FROM {db}.metric_samples FINAL ORDER BY event_id"
LETTERS = ("SELECT DISTINCT event_id, source_topic, partition, offset, reason, error_kind, "
           "raw_size FROM {db}.dead_letters ORDER BY event_id")
"""Each run reads every dead letter on the topic (both runs write the same ones, with the same
ids); a letter's event_time is when it was made, so rows are compared without it."""


def _records(now: datetime) -> tuple[list[tuple[int, bytes]], int, int]:
    """(partition, value) pairs: canonical, partial and hostile records, Avro, and one event_id
    sent twice in a partition (fast first, then one the fast path defers: the later must win).
    Also the number of distinct stored events and of dead letters they make."""
    out: list[tuple[int, bytes]] = []
    for i in range(400):
        t = now - timedelta(seconds=i)
        sample = MetricSample(resource_id=f"vm-{i % 7}", cpu_usage=float(i % 100), event_time=t,
                              extra={"gc_ms": i / 3}, labels={"az": "b"} if i % 2 else {})
        out.append((i % 4, CODEC.encode(sample, "avro" if i % 10 == 0 else "json")))
        stamp = (now - timedelta(seconds=i, microseconds=i * 7)).isoformat()
        partial = {"resource_id": f"web-{i % 5}", "cpu_usage": i % 100, "memory_usage": 62,
                   "event_time": stamp if i % 3 else stamp.replace("+00:00", "")}
        out.append((i % 4, orjson.dumps(partial)))  # no event_id: the position's
    bad = [b"{not json", orjson.dumps({"resource_id": "vm-x", "cpu_usage": 250.0,
                                       "event_time": now.isoformat()}),
           orjson.dumps({"resource_id": "vm\n1", "event_time": now.isoformat()}),
           orjson.dumps({"resource_id": "vm-y", "cpu_usage": True, "event_time": now.isoformat()}),
           orjson.dumps({"resource_id": "vm-z", "event_time": "2001-01-01T00:00:00Z"})]
    out += [(p, raw) for p in range(4) for raw in bad]
    first = MetricSample(event_id="dup-1", resource_id="vm-dup", cpu_usage=10.0, event_time=now)
    later = orjson.loads(CODEC.encode(first))
    later.update(cpu_usage=20, event_time=now.isoformat().replace("+00:00", ""))  # deferred
    out += [(1, CODEC.encode(first)), (1, orjson.dumps(later))]
    return out, 800 + 1, 4 * len(bad)


async def _produce(cfg: KafkaConfig, records: list[tuple[int, bytes]]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=cfg.bootstrap, linger_ms=5)
    await producer.start()
    try:
        for partition, value in records:
            await producer.send(cfg.topic("metrics"), value, key=b"k", partition=partition)
        await producer.flush()
    finally:
        await producer.stop()


def _ingest(kafka_cfg: KafkaConfig, backend: ChdbBackend, database: str, fast: bool,
            rows: int, letters: int, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """Run a pipeline (its own consumer group) until it stored every row and dead letter."""
    ch = ClickHouseConfig(path=backend.path, database=database)
    settings = Settings(kafka=kafka_cfg, clickhouse=ch,
                        sink=SinkConfig(batch_seconds=0.2, fast_decode=fast))
    apply_ddl(backend, ch)
    ctx = WorkerContext(settings=settings, role="ingest", codec=CODEC,
                        metrics=WorkerMetrics(registry=None))  # type: ignore[arg-type]
    consumer = ingest_module.kafka_clients.consumer

    def own_group(cfg: KafkaConfig, *topics: str, group_id: str, **options: Any) -> Any:
        return consumer(cfg, *topics, group_id=f"{group_id}-{database}", **options)

    monkeypatch.setattr(ingest_module.kafka_clients, "consumer", own_group)
    taken: list[int] = []
    with ThreadPoolExecutor(max_workers=1) as executor:
        pipeline = SinkPipeline(ctx, backend, executor)
        assert bool(pipeline.fast) == fast
        for path in pipeline.fast.values():
            decode = path.decode
            path.decode = lambda *a, _d=decode: _record(_d(*a), taken)  # type: ignore[method-assign]

        def counts() -> tuple[int, int]:
            n = backend.query(f"SELECT uniqExact(event_id) AS n FROM {database}.metric_samples")
            d = backend.query(f"SELECT uniqExact(event_id) AS n FROM {database}.dead_letters")
            return int(n[0]["n"]), int(d[0]["n"])

        async def scenario() -> None:
            task = asyncio.create_task(pipeline.run())
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 90
            while await loop.run_in_executor(executor, counts) != (rows, letters):
                assert loop.time() < deadline, await loop.run_in_executor(executor, counts)
                await asyncio.sleep(0.3)
            assert await pipeline.close(30)
            await asyncio.gather(task, return_exceptions=True)

        asyncio.run(scenario())
    return {"rows": backend.query(ROWS.format(db=database)),
            "letters": backend.query(LETTERS.format(db=database)), "taken": len(taken)}


def _record(batch: Any, taken: list[int]) -> Any:
    taken.extend(batch.taken)
    return batch


def test_fast_and_pydantic_paths_store_the_same_rows(
        kafka_cfg: KafkaConfig, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    records, rows, letters = _records(datetime.now(UTC).replace(microsecond=0))
    asyncio.run(_produce(kafka_cfg, records))
    backend = ChdbBackend(tmp_path / "chdb")
    try:
        fast = _ingest(kafka_cfg, backend, "fast", True, rows, letters, monkeypatch)
        slow = _ingest(kafka_cfg, backend, "slow", False, rows, letters, monkeypatch)
    finally:
        backend.close()
    assert fast["taken"] >= 600 and slow["taken"] == 0  # the fast path did the common ones
    assert len(fast["rows"]) == rows and fast["rows"] == slow["rows"]
    assert len(fast["letters"]) == letters and fast["letters"] == slow["letters"]
    [dup] = [r for r in fast["rows"] if r["event_id"] == "dup-1"]
    assert dup["cpu_usage"] == 20.0  # record order kept: the later record won
