"""Nothing is lost: a worker killed with SIGKILL mid-stream, and a ClickHouse outage."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer

from schemas import MetricSample
from schemas.codec import Codec
from sinks.backend import ChdbBackend, FlakyBackend
from sinks.config import ClickHouseConfig, SinkConfig
from sinks.ddl import apply_ddl
from streams.app import WorkerContext
from streams.ingest import SinkPipeline
from streams.metrics import WorkerMetrics
from streams.settings import KafkaConfig, Settings
from tests.integration.conftest import wait_until

pytestmark = pytest.mark.kafka
CODEC = Codec()


async def _produce(cfg: KafkaConfig, start: int, count: int, pause_every: int = 0) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=cfg.bootstrap, linger_ms=5)
    await producer.start()
    try:
        for i in range(start, start + count):
            sample = MetricSample(
                resource_id=f"vm-{i % 50}", cpu_usage=float(i % 100), event_id=f"ev-{i}"
            )
            await producer.send(
                cfg.topic("metrics"),
                CODEC.encode(sample, "avro" if i % 2 else "json"),
                key=sample.resource_id.encode(),
            )
            if pause_every and i % pause_every == 0:
                await producer.flush()
                await asyncio.sleep(0.05)
        await producer.flush()
    finally:
        await producer.stop()


def test_sigkill_mid_stream_loses_nothing(worker_factory, kafka_cfg) -> None:  # type: ignore[no-untyped-def]
    total = 12_000
    worker = worker_factory("ingest")
    producing = threading.Thread(
        target=lambda: asyncio.run(_produce(kafka_cfg, 0, total, pause_every=500))
    )
    producing.start()
    wait_until(
        lambda: worker.scalar("SELECT count() FROM novacron.metric_samples") > 2000,
        timeout=60,
        interval=0.1,
        what="first rows before the kill",
    )
    worker.kill()  # SIGKILL: no flush, no commit, no goodbye
    producing.join()
    worker.start()  # same data folder, same consumer group: resumes from committed offsets
    wait_until(
        lambda: worker.scalar("SELECT uniqExact(event_id) FROM novacron.metric_samples") == total,
        timeout=120,
        what="every event stored after the restart",
    )
    assert worker.scalar("SELECT count() FROM novacron.metric_samples FINAL") == total
    assert worker.scalar("SELECT count() FROM novacron.dead_letters") == 0


def test_failing_inserts_back_off_and_lose_nothing(kafka_cfg: KafkaConfig, tmp_path: Path) -> None:
    # The outage is a wrapper whose inserts raise (FlakyBackend), not a stopped ClickHouse: this
    # checks the sink's retry, backoff and commit order, not reconnecting to a server.
    ch = ClickHouseConfig(path=tmp_path / "chdb")
    settings = Settings(
        kafka=kafka_cfg,
        clickhouse=ch,
        sink=SinkConfig(batch_seconds=0.2, retry_initial_seconds=0.1, retry_max_seconds=0.5),
    )
    backend = FlakyBackend(ChdbBackend(ch.path))
    apply_ddl(backend, ch)
    ctx = WorkerContext(
        settings=settings, role="ingest", codec=CODEC, metrics=WorkerMetrics(registry=None)
    )  # type: ignore[arg-type]
    executor = ThreadPoolExecutor(max_workers=1)

    def count_now() -> int:
        rows = backend.inner.query("SELECT uniqExact(event_id) AS n FROM novacron.metric_samples")
        return int(rows[0]["n"])

    async def count() -> int:
        # through the sink's ClickHouse thread: this reads on the writer's own session, which
        # must not run a query while it streams an insert (/sql has read sessions of its own)
        return await asyncio.get_running_loop().run_in_executor(executor, count_now)


    async def scenario() -> None:
        pipeline = SinkPipeline(ctx, backend, executor)
        task = asyncio.create_task(pipeline.run())
        await _produce(kafka_cfg, 0, 2000)
        await _wait(lambda: _eq(count(), 2000))
        backend.down = True  # ClickHouse goes away
        await _produce(kafka_cfg, 2000, 3000)
        await _wait(lambda: _true(pipeline.sink.stats.failed_attempts >= 3))
        # nothing new landed while it was down (the insert thread waits in its backoff)
        assert count_now() == 2000
        backend.down = False  # and comes back
        await _wait(lambda: _eq(count(), 5000))
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    try:
        asyncio.run(scenario())
        assert (
            backend.inner.query("SELECT count() AS n FROM novacron.metric_samples FINAL")[0]["n"]
            == 5000
        )
    finally:
        backend.inner.close()
        executor.shutdown()


async def _eq(value, expected) -> bool:  # type: ignore[no-untyped-def]
    return bool(await value == expected)


async def _true(value: bool) -> bool:
    return value


async def _wait(predicate, timeout: float = 60.0) -> None:  # type: ignore[no-untyped-def]
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await predicate():
        assert loop.time() < deadline, "timed out"
        await asyncio.sleep(0.2)


def _pipeline_parts(kafka_cfg: KafkaConfig, tmp_path: Path, batch_seconds: float
                    ) -> tuple[WorkerContext, FlakyBackend, ThreadPoolExecutor]:
    ch = ClickHouseConfig(path=tmp_path / "chdb")
    sink = SinkConfig(batch_seconds=batch_seconds, batch_size=100_000,
                      retry_initial_seconds=0.1, retry_max_seconds=0.2)
    settings = Settings(kafka=kafka_cfg, clickhouse=ch, sink=sink)
    backend = FlakyBackend(ChdbBackend(ch.path))
    apply_ddl(backend, ch)
    ctx = WorkerContext(
        settings=settings, role="ingest", codec=CODEC, metrics=WorkerMetrics(registry=None)
    )  # type: ignore[arg-type]
    return ctx, backend, ThreadPoolExecutor(max_workers=1)


def _stored_after(scenario, backend: FlakyBackend, executor: ThreadPoolExecutor) -> int:  # type: ignore[no-untyped-def]
    """Run the scenario, then count the distinct events stored; close what the test opened."""
    try:
        asyncio.run(scenario())
        rows = backend.inner.query("SELECT uniqExact(event_id) AS n FROM novacron.metric_samples")
        return int(rows[0]["n"])
    finally:
        backend.inner.close()
        executor.shutdown()


async def _buffered(pipeline: SinkPipeline, n: int) -> bool:
    return len(pipeline.sink) == n


async def _committed(kafka_cfg: KafkaConfig) -> int:
    """Sum of the sink group's committed offsets on the metrics topic."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    consumer = AIOKafkaConsumer(bootstrap_servers=kafka_cfg.bootstrap,
                                group_id=f"{kafka_cfg.topic_prefix}sink")
    await consumer.start()
    try:
        tps = [TopicPartition(kafka_cfg.topic("metrics"), p) for p in range(kafka_cfg.partitions)]
        return sum([await consumer.committed(tp) or 0 for tp in tps])
    finally:
        await consumer.stop()


def test_close_lands_what_is_buffered_and_commits_it(kafka_cfg: KafkaConfig, tmp_path: Path
                                                     ) -> None:
    # a batch that would wait an hour for its time: only close() can have landed it
    ctx, backend, executor = _pipeline_parts(kafka_cfg, tmp_path, batch_seconds=3600)

    async def scenario() -> None:
        pipeline = SinkPipeline(ctx, backend, executor)
        task = asyncio.create_task(pipeline.run())
        await _produce(kafka_cfg, 0, 400)
        await _wait(lambda: _buffered(pipeline, 400))
        assert await _committed(kafka_cfg) == 0
        assert await pipeline.close(timeout=30) is True
        assert task.done() and task.exception() is None
        assert await _committed(kafka_cfg) == 400

    assert _stored_after(scenario, backend, executor) == 400


def test_close_during_an_outage_gives_up_and_loses_nothing(kafka_cfg: KafkaConfig,
                                                           tmp_path: Path) -> None:
    ctx, backend, executor = _pipeline_parts(kafka_cfg, tmp_path, batch_seconds=0.2)

    async def scenario() -> None:
        first = SinkPipeline(ctx, backend, executor)
        task = asyncio.create_task(first.run())
        await _produce(kafka_cfg, 0, 100)
        await _wait(lambda: _eq(_committed(kafka_cfg), 100))
        backend.down = True
        await _produce(kafka_cfg, 100, 200)
        await _wait(lambda: _true(first.sink.stats.failed_attempts >= 2))
        # ClickHouse stays down: close() gives up after its timeout instead of hanging
        assert await first.close(timeout=0.5) is True
        assert task.done() and task.exception() is None
        assert await _committed(kafka_cfg) == 100  # nothing more stored, nothing more committed
        backend.down = False
        second = SinkPipeline(ctx, backend, executor)  # the next start reads it all again
        again = asyncio.create_task(second.run())
        await _wait(lambda: _true(second.sink.stats.rows_inserted >= 200))
        assert await second.close(timeout=30) is True
        await again

    assert _stored_after(scenario, backend, executor) == 300


def test_close_when_the_last_insert_fails_stops_and_commits_nothing(
        kafka_cfg: KafkaConfig, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    ctx, backend, executor = _pipeline_parts(kafka_cfg, tmp_path, batch_seconds=3600)

    def broken_insert(batch: object) -> None:
        raise RuntimeError("disk full")

    async def scenario() -> None:
        pipeline = SinkPipeline(ctx, backend, executor)
        task = asyncio.create_task(pipeline.run())
        await _produce(kafka_cfg, 0, 50)
        await _wait(lambda: _buffered(pipeline, 50))
        pipeline.sink.insert = broken_insert  # type: ignore[method-assign]
        assert await pipeline.close(timeout=30) is True
        assert task.done() and task.exception() is None  # the worker stops, it does not crash
        assert await _committed(kafka_cfg) == 0  # so the next start reads the 50 again

    assert _stored_after(scenario, backend, executor) == 0
    assert "the last insert or commit failed while stopping" in caplog.text
