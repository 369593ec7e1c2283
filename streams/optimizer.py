"""Kafka wiring of the optimizer: metrics in, insights and decisions out, models checkpointed."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
import zlib
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import astuple, dataclass, field
from typing import Any, Protocol

import faust
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import KafkaTimeoutError
from prometheus_client import CollectorRegistry, Counter, Gauge
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from agents.optimizer import FORECAST_METRICS, Optimizer
from schemas import Event, Insight, MetricSample
from schemas.errors import DecodeError, NonRetryableError
from streams.app import WorkerContext
from streams.metrics import REGISTRY, RecommendationMetrics

__all__ = ["CheckpointBook", "CheckpointConfig", "KafkaStateStore", "MemoryStateStore",
           "OptimizerHost", "OptimizerMetrics", "RawSample", "SnapshotMeta", "StateStore",
           "optimizer_metrics", "register"]

log = logging.getLogger(__name__)
STATE_TOPIC = "optimizer-state"
_HEADERS = ("novacron-partition", "novacron-offset", "novacron-samples")
_ENCODING = "novacron-encoding"
Snapshots = dict[str, tuple[bytes, "SnapshotMeta"]]
RawSample = tuple[int, int, bytes | None]  # a metrics record: partition, offset, raw value
_BATCH_SIZE, _BATCH_SECONDS, _TICK_SECONDS = 500, 0.5, 1.0  # take() batches; checkpoint timer


class CheckpointConfig(BaseSettings):
    """When to snapshot (env NOVACRON_OPTIMIZER_CHECKPOINT__*); one is ~0.6 MB and ~2 ms."""

    model_config = SettingsConfigDict(env_prefix="NOVACRON_OPTIMIZER_CHECKPOINT__", extra="ignore")

    every_samples: int = Field(default=500, ge=1)
    """Snapshot a resource after this many new samples."""
    max_age_seconds: float = Field(default=300.0, gt=0)
    """Snapshot a resource with unsaved samples at least this often (idle ones included)."""
    gauges_seconds: float = Field(default=15.0, gt=0)
    """Period of the MAE/MAPE gauge refresh (it walks every resource in memory)."""


@dataclass(frozen=True)
class SnapshotMeta:
    """Where a snapshot's model stands: the last metrics record it learned, and how many."""

    partition: int
    offset: int
    samples: int

    def headers(self) -> list[tuple[str, bytes]]:
        return [(k, str(v).encode()) for k, v in zip(_HEADERS, astuple(self), strict=True)]

    @classmethod
    def from_headers(cls, headers: Sequence[tuple[str, bytes]]) -> SnapshotMeta:
        try:
            return cls(*(int(dict(headers)[k]) for k in _HEADERS))
        except (KeyError, ValueError) as exc:
            raise DecodeError(f"optimizer snapshot without valid headers: {exc}") from exc


@dataclass
class _Tracked:
    partition: int
    offset: int = -1
    samples: int = 0
    unsaved: int = 0
    saved_at: float = field(default_factory=time.monotonic)


class CheckpointBook:
    """Per resource: its partition, the last offset learned, and whether a snapshot is due."""

    def __init__(self, config: CheckpointConfig) -> None:
        self.config = config
        self._by_rid: dict[str, _Tracked] = {}

    def seen(self, rid: str, partition: int, offset: int) -> bool:
        """True when the model already learned this record (redelivered after a restart)."""
        t = self._by_rid.get(rid)
        return t is not None and t.partition == partition and offset <= t.offset

    def learned(self, rid: str, partition: int, offset: int) -> bool:
        """Count a learned record; True when the resource has enough new samples to save."""
        t = self._by_rid.setdefault(rid, _Tracked(partition))
        t.partition, t.offset, t.samples = partition, offset, t.samples + 1
        t.unsaved += 1
        return t.unsaved >= self.config.every_samples

    def restored(self, rid: str, meta: SnapshotMeta) -> None:
        self._by_rid[rid] = _Tracked(meta.partition, meta.offset, meta.samples)

    def saved(self, rid: str, now: float) -> None:
        self._by_rid[rid].unsaved, self._by_rid[rid].saved_at = 0, now

    def meta(self, rid: str) -> SnapshotMeta:
        return SnapshotMeta(*astuple(self._by_rid[rid])[:3])  # partition, offset, samples

    def stale(self, now: float) -> list[str]:
        """Resources whose newest samples have waited max age or longer for a snapshot."""
        return [r for r, t in self._by_rid.items()
                if t.unsaved and now - t.saved_at >= self.config.max_age_seconds]

    def unsaved(self, partitions: set[int]) -> list[str]:
        return [r for r, t in self._by_rid.items() if t.unsaved and t.partition in partitions]

    def drop_partitions(self, partitions: set[int]) -> list[str]:
        gone = [r for r, t in self._by_rid.items() if t.partition in partitions]
        self._by_rid = {r: t for r, t in self._by_rid.items() if t.partition not in partitions}
        return gone


class StateStore(Protocol):
    """The compacted snapshot topic, co-partitioned with metrics; `save` waits for the ack."""

    async def load(self, partition: int) -> Snapshots: ...
    async def save(self, rid: str, blob: bytes, meta: SnapshotMeta) -> None: ...
    async def close(self) -> None: ...


@dataclass
class MemoryStateStore:
    """In-process StateStore for tests: the latest snapshot per partition and resource."""

    partitions: dict[int, Snapshots] = field(default_factory=dict)

    async def load(self, partition: int) -> Snapshots:
        return dict(self.partitions.get(partition, {}))

    async def save(self, rid: str, blob: bytes, meta: SnapshotMeta) -> None:
        self.partitions.setdefault(meta.partition, {})[rid] = (blob, meta)

    async def close(self) -> None: ...


class KafkaStateStore:
    """Snapshots in the compacted topic, written to the metrics partition's number (like a Faust
    table changelog), so a partition's owner reads exactly one state partition on assignment."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self.bootstrap, self.topic = bootstrap, topic
        self._producer: AIOKafkaProducer | None = None

    async def save(self, rid: str, blob: bytes, meta: SnapshotMeta) -> None:
        if (producer := self._producer) is None:
            producer = self._producer = AIOKafkaProducer(
                bootstrap_servers=self.bootstrap, acks="all", max_request_size=16 * 2**20)
            await producer.start()
        # zlib level 1: ~3 ms makes a 0.6 MB snapshot ~70 KB (Kafka's gzip is level 9, ~10x
        # slower, and lz4/zstd need libraries we do not ship); the header says how to read it
        value = zlib.compress(blob, 1)
        await (await producer.send(self.topic, value, key=rid.encode(), partition=meta.partition,
                                   headers=[*meta.headers(), (_ENCODING, b"zlib")]))

    async def load(self, partition: int) -> Snapshots:
        tp = TopicPartition(self.topic, partition)
        # no group: the fetcher starts at "earliest" (a later seek races its reset to "latest")
        consumer = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, enable_auto_commit=False,
                                    group_id=None, auto_offset_reset="earliest")
        await consumer.start()
        try:
            consumer.assign([tp])
            try:
                end = (await consumer.end_offsets([tp]))[tp]
            except KafkaTimeoutError:  # also what a missing partition looks like: say which
                if partition in (consumer.partitions_for_topic(self.topic) or set()):
                    raise
                raise NonRetryableError(f"{self.topic} has no partition {partition}: create it "
                                        "with as many partitions as the metrics topic") from None
            return await _read_until(consumer, tp, end)
        finally:
            await consumer.stop()

    async def close(self) -> None:
        if self._producer is not None:
            await self._producer.stop()
            self._producer = None


async def _read_until(consumer: AIOKafkaConsumer, tp: TopicPartition, end: int) -> Snapshots:
    out: Snapshots = {}
    while await consumer.position(tp) < end:
        for rec in (await consumer.getmany(tp, timeout_ms=500)).get(tp, []):
            if rec.key is None:
                continue
            rid = rec.key.decode()
            if rec.value is None:  # tombstone: the resource's state was deleted
                out.pop(rid, None)
                continue
            zipped = dict(rec.headers).get(_ENCODING) == b"zlib"
            try:
                blob = zlib.decompress(rec.value) if zipped else rec.value
                out[rid] = (blob, SnapshotMeta.from_headers(rec.headers))
            except (DecodeError, zlib.error) as exc:
                log.warning("ignoring snapshot of %s at offset %d: %s", rid, rec.offset, exc)
    return out


class OptimizerMetrics:
    """Prometheus metrics of the optimizer (`optimizer_metrics()`: one set per registry)."""

    def __init__(self, registry: CollectorRegistry | None) -> None:
        def gauge(name: str, doc: str, *labels: str) -> Gauge:
            return Gauge(f"novacron_optimizer_{name}", doc, labels, registry=registry)

        def counter(name: str, doc: str, *labels: str) -> Counter:
            return Counter(f"novacron_optimizer_{name}", doc, labels, registry=registry)

        self.mae = gauge("mae", "Online forecast MAE", "resource", "metric")
        self.mape = gauge("mape", "Online forecast MAPE (%)", "resource", "metric")
        self.mae_all = gauge("overall_mae", "Forecast MAE over every resource", "metric")
        self.mape_all = gauge("overall_mape", "Forecast MAPE (%) over every resource", "metric")
        self.resources = gauge("resources", "Resources with models in memory")
        self.samples = counter("samples", "Samples: learned, duplicate or error", "result")
        self.anomalies = counter("anomalies", "Anomaly insights emitted")
        self.recommendations = RecommendationMetrics(registry)
        self.checkpoints = counter("checkpoints", "Snapshots written, by reason", "reason")
        self.restores = counter("restores", "Snapshots read on assignment, by result", "result")

    def count(self, events: Iterable[Event]) -> None:
        for e in events:
            if isinstance(e, Insight) and e.kind == "anomaly":
                self.anomalies.inc()
            elif isinstance(e, Insight) and e.kind == "recommendation":
                self.recommendations.count(e)

    def refresh(self, quality: dict[str, Any], n_resources: int) -> None:
        self.resources.set(n_resources)
        for rid, per_metric in quality["resources"].items():
            for metric, q in per_metric.items():
                _set(self.mae, q["mae"], rid, metric)
                _set(self.mape, q["mape"], rid, metric)
        for metric, q in quality["overall"].items():
            _set(self.mae_all, q["mae"], metric)
            _set(self.mape_all, q["mape"], metric)

    def forget(self, rid: str) -> None:
        for g, metric in ((g, m) for g in (self.mae, self.mape) for m in FORECAST_METRICS):
            with contextlib.suppress(KeyError):  # never had a value
                g.remove(rid, metric)


@functools.cache  # a registry refuses the same metric names twice
def optimizer_metrics(registry: CollectorRegistry = REGISTRY) -> OptimizerMetrics:
    """The process's optimizer metrics in `registry`."""
    return OptimizerMetrics(registry)


def _set(gauge: Gauge, value: float | None, *labels: str) -> None:
    if value is not None:
        gauge.labels(*labels).set(value)


class OptimizerHost:
    """The thin host around `Optimizer`: batches in, events out, checkpoints by partition."""

    def __init__(self, optimizer: Optimizer, store: StateStore, config: CheckpointConfig,
                 metrics: OptimizerMetrics, emit: Callable[[list[Event]], Awaitable[int]],
                 decode: Callable[[list[bytes | None]], list[MetricSample]]) -> None:
        self.optimizer, self.store, self.config = optimizer, store, config
        self.metrics, self.emit, self.decode = metrics, emit, decode
        self.book = CheckpointBook(config)
        self.loaded: set[int] = set()
        self._gauges_at = 0.0
        self._due: set[str] = set()  # resources with enough new samples in this batch
        self._lock = asyncio.Lock()  # one batch, save or rebalance at a time: no half batches

    async def handle(self, records: Sequence[RawSample]) -> list[Event]:
        """Learn a batch, emit what it causes (one await), then save the snapshots now due."""
        async with self._lock:
            for p in sorted({p for p, _, _ in records} - self.loaded):
                await self._load(p)
            self._due.clear()
            out = [e for rec in records for e in self._learn(rec)]
            try:
                await self.emit(out)
            except BaseException:  # unsent: relearn the batch's partitions from their snapshots
                self._discard({p for p, _, _ in records})
                raise
            self.metrics.count(out)
            await self._save(sorted(self._due), "samples")
            return out

    def _learn(self, rec: RawSample) -> list[Event]:
        partition, offset, value = rec
        decoded = self.decode([value])  # invalid ones are skipped; ingest dead-letters them
        if not decoded:
            return []
        sample, rid = decoded[0], decoded[0].resource_id
        if self.book.seen(rid, partition, offset):
            self.metrics.samples.labels("duplicate").inc()  # already in the restored model
            return []
        if self.book.learned(rid, partition, offset):
            self._due.add(rid)
        try:
            events = self.optimizer.process(sample)
        except Exception:  # one bad sample or model bug must not stop every resource's learning
            log.exception("optimizer failed on %s (event %s)", rid, sample.event_id)
            self.metrics.samples.labels("error").inc()
            return []
        self.metrics.samples.labels("learned").inc()
        return events

    async def _load(self, partition: int) -> None:
        snapshots = await self.store.load(partition)
        for rid, (blob, meta) in snapshots.items():
            try:
                self.optimizer.restore(rid, blob)
            except DecodeError as exc:  # e.g. written by an older model version: start cold
                log.warning("optimizer state of %s not restored, starting cold: %s", rid, exc)
                self.metrics.restores.labels("failed").inc()
            else:
                self.book.restored(rid, meta)
                self.metrics.restores.labels("ok").inc()
        self.loaded.add(partition)
        log.info("optimizer: partition %d loaded, %d resource(s)", partition, len(snapshots))

    async def _save(self, rids: Iterable[str], reason: str) -> None:
        for rid in rids:
            await self.store.save(rid, self.optimizer.snapshot(rid), self.book.meta(rid))
            self.book.saved(rid, time.monotonic())
            self.metrics.checkpoints.labels(reason).inc()

    async def tick(self) -> None:
        """Periodic: save snapshots older than max age; now and then refresh the gauges."""
        async with self._lock:
            now = time.monotonic()
            await self._save(self.book.stale(now), "age")
            if now - self._gauges_at >= self.config.gauges_seconds:
                self._gauges_at = now
                self.metrics.refresh(self.optimizer.quality(), len(self.optimizer.resources()))

    async def revoked(self, partitions: Iterable[int]) -> None:
        """Partitions may move: make their models durable before the next owner reads them."""
        async with self._lock:
            await self._save(self.book.unsaved(set(partitions)), "revoke")

    async def assigned(self, partitions: Iterable[int]) -> None:
        """Drop the models of partitions no longer ours: another worker now advances them."""
        async with self._lock:
            self._discard(self.loaded - set(partitions))

    def _discard(self, partitions: set[int]) -> None:
        for rid in self.book.drop_partitions(partitions):
            self.optimizer.forget(rid)
            self.metrics.forget(rid)
        self.loaded -= partitions

    async def shutdown(self) -> None:
        """Graceful stop: nothing learned since the last snapshot is lost."""
        async with self._lock:
            await self._save(self.book.unsaved(self.loaded), "shutdown")
        await self.store.close()


def register(app: faust.App, ctx: WorkerContext) -> None:
    """The optimizer agent on `metrics`, its checkpoint timer and its rebalance hooks."""
    config, name = CheckpointConfig(), ctx.topic("metrics")
    host = OptimizerHost(
        Optimizer(ctx.settings.optimizer),
        KafkaStateStore(ctx.settings.kafka.bootstrap, ctx.topic(STATE_TOPIC)),
        config, optimizer_metrics(), ctx.emitter.emit,
        lambda values: ctx.decode_all(values, MetricSample))

    @app.agent(ctx.raw_topic(app, "metrics"))
    async def optimize(stream: Any) -> None:  # take_events is missing from Faust's StreamT
        try:
            async for events in stream.take_events(_BATCH_SIZE, within=_BATCH_SECONDS):
                await host.handle([(e.message.partition, e.message.offset, e.value)
                                   for e in events])
                ctx.metrics.events.labels("optimizer", "metrics").inc(len(events))
        finally:  # graceful stop (the revoke signal is not sent while the worker stops)
            await host.shutdown()

    @app.timer(_TICK_SECONDS)
    async def checkpoint() -> None:
        await host.tick()

    async def on_revoked(_app: Any, /, *args: Any, signal: Any, **_: Any) -> None:
        await host.revoked(tp.partition for tp in args[0] if tp.topic == name)

    async def on_assigned(_app: Any, /, *args: Any, signal: Any, **_: Any) -> None:
        await host.assigned(tp.partition for tp in args[0] if tp.topic == name)

    app.on_partitions_revoked.connect(on_revoked)
    app.on_partitions_assigned.connect(on_assigned)
