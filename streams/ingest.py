"""The ingest role: one aiokafka batch loop that decodes every topic, dead-letters bad input and
lands everything in ClickHouse, committing offsets only after the insert.

It runs as a task inside the role's Faust app (which serves /metrics, /health and /sql) but
consumes with aiokafka's `getmany` directly: Faust's per-event machinery tops out near 13.5k
events/s on this hardware (PERFORMANCE-NOTES.md), and the history path must move more than that.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import faust
from aiokafka import (
    AIOKafkaConsumer,
    AIOKafkaProducer,
    ConsumerRebalanceListener,
    ConsumerRecord,
    TopicPartition,
)

from agents.ingest import Ingestor, RawRecord, raw_record, record_event_id, size_limit
from schemas import DeadLetter, Event, MetricSample
from schemas.edge import EdgeContext
from sinks.audit import AuditChain
from sinks.backend import Backend, open_backend
from sinks.columns import event_columns, merge_rows
from sinks.ddl import apply_ddl
from sinks.fastpath import FastBatch, FastPath, fast_path_for
from sinks.queries import audit_tail
from sinks.writer import BatchingSink, SinkStopped
from streams import kafka_clients
from streams.app import WorkerContext
from streams.audithead import HEADS_TOPIC, HeadPublisher
from streams.gc_tuning import tune_gc
from streams.sqlview import mount_sql, sql_endpoint
from streams.topics import CATALOGUE

__all__ = ["SinkPipeline", "register"]

log = logging.getLogger(__name__)


class SinkPipeline:
    """decode → dead-letter → batch → insert → commit, for every catalogue topic."""

    def __init__(self, ctx: WorkerContext, backend: Backend, executor: ThreadPoolExecutor) -> None:
        self.ctx = ctx
        self.backend = backend
        self.executor = executor  # one thread: chDB calls are blocking and not concurrent-safe
        self.cfg = ctx.settings.sink
        self.sink = BatchingSink(
            backend,
            ctx.settings.clickhouse.database,
            self.cfg,
            audit=AuditChain(),  # resumed in run(), after the signed head has been read
            on_retry=self._on_retry,
        )
        db = ctx.settings.clickhouse.database
        self.heads = HeadPublisher(ctx.settings.audit, db, ctx.topic(HEADS_TOPIC))
        self.ingestor = Ingestor(ctx.codec)
        fast = fast_path_for(MetricSample) if self.cfg.fast_decode else None
        self.fast: dict[type[Event], FastPath] = {MetricSample: fast} if fast else {}
        self.topics = {ctx.topic(name): spec for name, spec in CATALOGUE.items()}
        self.dlq_topic = ctx.topic("dlq")
        self._dlq_sends: list[Awaitable[Any]] = []
        self._closing = asyncio.Event()  # set by close(): drain, commit, leave the group
        self._stopped = asyncio.Event()
        self._running = False

    async def run(self) -> None:
        """Consume until close() (then land and commit what is buffered) or cancellation."""
        self._running = True
        try:
            await self._run()
        finally:
            self._stopped.set()

    async def close(self, timeout: float) -> bool:
        """Stop consuming, land and commit what is buffered, leave the consumer group.

        ClickHouse gets `timeout` seconds for the last insert; then the sink gives up after its
        current attempt and what it held is read again on the next start (its offsets were not
        committed). True once the pipeline no longer runs (its backend may then be closed).
        """
        if not self._running or self._stopped.is_set():
            return True
        self._closing.set()
        try:
            await asyncio.wait_for(self._stopped.wait(), timeout)
            return True
        except TimeoutError:
            log.warning("ingest: the last insert did not finish within %gs; giving up on it "
                        "(its records are read again on the next start)", timeout)
            self.sink.stop()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopped.wait(), 5.0)
        return self._stopped.is_set()

    async def _run(self) -> None:
        kafka = self.ctx.settings.kafka
        consumer = kafka_clients.consumer(
            kafka,
            group_id=f"{kafka.topic_prefix}sink",
            enable_auto_commit=False,
            isolation_level="read_committed",  # an aborted GitOps sync never lands in history
            auto_offset_reset="earliest",
            # inserts may block for a long time while ClickHouse is down; heartbeats keep the
            # membership alive, so the poll interval is not what detects a dead worker
            max_poll_interval_ms=24 * 3600 * 1000,
            rebalance_timeout_ms=30_000,
            session_timeout_ms=10_000,
            # few, full fetches: history lands once per batch_seconds anyway (SinkConfig)
            fetch_max_wait_ms=self.cfg.fetch_max_wait_ms, fetch_min_bytes=self.cfg.fetch_min_bytes,
            max_partition_fetch_bytes=4 * 1024 * 1024,
        )
        producer = kafka_clients.producer(kafka, acks="all", linger_ms=5)
        await producer.start()
        try:
            self.heads.producer = producer
            self.sink.audit = await self._resume_audit()
            await consumer.start()
            consumer.subscribe(list(self.topics), listener=_LogRebalance())
            tune_gc()
            try:
                await self._loop(consumer, producer)
            finally:
                self.sink.stop()
                await consumer.stop()
        finally:
            await producer.stop()

    async def _loop(self, consumer: AIOKafkaConsumer, producer: AIOKafkaProducer) -> None:
        # One insert runs in the ClickHouse thread while the loop decodes the next batch; the
        # buffer is bounded (2 batches), so an outage stops consumption instead of eating memory.
        inflight: asyncio.Task[None] | None = None
        try:
            while not self._closing.is_set():
                batches = await consumer.getmany(timeout_ms=100, max_records=self.cfg.batch_size)
                for tp, records in batches.items():
                    await self._process(tp, records, producer)
                if inflight is not None and (inflight.done() or self._full()):
                    await inflight
                    inflight = None
                if inflight is None and self._due():
                    inflight = asyncio.create_task(self._flush(consumer))
            await self._drain(consumer, inflight)
            inflight = None
        finally:
            if inflight is not None:
                inflight.cancel()
                await asyncio.gather(inflight, return_exceptions=True)

    async def _drain(self, consumer: AIOKafkaConsumer, inflight: asyncio.Task[None] | None) -> None:
        """On close: the insert under way, then what is still buffered, each committed."""
        try:
            if inflight is not None:
                await inflight
            if not self.sink.empty:
                await self._flush(consumer)
        except SinkStopped:  # close() gave up on ClickHouse: nothing committed, nothing lost
            log.warning("ingest: stopped before the last insert; %d buffered records are read "
                        "again on the next start", len(self.sink))
            return
        except Exception:  # stopping anyway: what was not committed is read again on restart
            log.exception("ingest: the last insert or commit failed while stopping; %d buffered "
                          "records are read again on the next start", len(self.sink))
            return
        log.info("ingest: drained; offsets committed up to the last stored record")

    def _full(self) -> bool:
        return len(self.sink) >= 2 * self.cfg.batch_size

    async def _process(
        self, tp: TopicPartition, records: list[ConsumerRecord], producer: AIOKafkaProducer
    ) -> None:
        spec = self.topics[tp.topic]
        edge = self.ctx.codec.pinned_edge()  # one clock reading judges the whole poll batch
        fast = self._fast(spec.event_type, spec.external_input, records, edge)
        at = range(len(records)) if fast is None else fast.deferred  # what pydantic decodes
        pending = [records[i] for i in at]
        events = self.ingestor.decode_batch(pending, spec.event_type, spec.external_input, edge)
        keep: list[tuple[ConsumerRecord, Event]] = []
        keep_at: list[int] = []
        for i, rec, event in zip(at, pending, events, strict=True):
            if isinstance(event, DeadLetter) and spec.name != "dlq":
                await self._dead_letter(event, producer)
                self.sink.add_offset(rec.topic, rec.partition, rec.offset)
            else:
                keep.append((rec, event))
                keep_at.append(i)
        try:  # the whole poll batch at once, column-wise
            if fast is None or not fast.taken:
                self.sink.add_batch([e for _, e in keep], tp.topic, tp.partition,
                                    [rec.offset for rec, _ in keep])
            else:  # the fast path's rows and pydantic's, in record order
                etype = spec.event_type.event_type
                columns = fast.columns if not keep else merge_rows(
                    fast.columns, fast.taken, event_columns(etype, [e for _, e in keep]), keep_at)
                offsets = [records[i].offset for i in (*fast.taken, *keep_at)]
                self.sink.add_columns(etype, columns, tp.topic, tp.partition, offsets)
        except Exception:  # one record cannot be stored: add them one by one to find it
            if fast is not None and fast.taken:  # every record through pydantic, in order
                keep = await self._decoded(spec.event_type, spec.external_input, records, fast,
                                           list(zip(keep_at, keep, strict=True)), edge,
                                           producer)
            await self._add_each(keep, producer)
        self.ctx.metrics.events.labels("ingest", spec.name).inc(len(records))
        taken = 0 if fast is None else len(fast.taken)
        decoded = self.ctx.metrics.sink_decoded
        if taken:
            decoded.labels(spec.name, "fast").inc(taken)
        if len(records) > taken:
            decoded.labels(spec.name, "pydantic").inc(len(records) - taken)

    def _fast(self, expected: type[Event], external: bool, records: list[ConsumerRecord],
              edge: EdgeContext) -> FastBatch | None:
        """The rows the fast path takes from a poll batch (None: it does not apply)."""
        fast = self.fast.get(expected)
        if fast is None:
            return None
        try:
            return fast.decode([r.value for r in records], edge,
                               size_limit(self.ctx.codec, external),
                               lambda i: record_event_id(records[i].topic, records[i].partition,
                                                         records[i].offset))
        except Exception:  # a fault of the pre-filter must not cost a record: pydantic decides
            log.exception("ingest: the fast decode path failed; the batch goes through pydantic")
            return None

    async def _decoded(
        self, expected: type[Event], external: bool, records: list[ConsumerRecord],
        fast: FastBatch, kept: list[tuple[int, tuple[ConsumerRecord, Event]]], edge: EdgeContext,
        producer: AIOKafkaProducer,
    ) -> list[tuple[ConsumerRecord, Event]]:
        """The fast path's records decoded by pydantic too, merged with `kept` in record order
        (for the one-by-one fallback, which needs events)."""
        taken = [records[i] for i in fast.taken]
        events = self.ingestor.decode_batch(taken, expected, external, edge)
        for i, rec, event in zip(fast.taken, taken, events, strict=True):
            if isinstance(event, DeadLetter):  # pydantic is the authority: never stored
                log.error("ingest: the fast path took %s[%d]@%d, which pydantic refuses: %s",
                          rec.topic, rec.partition, rec.offset, event.reason)
                await self._dead_letter(event, producer)
                self.sink.add_offset(rec.topic, rec.partition, rec.offset)
            else:
                kept.append((i, (rec, event)))
        return [pair for _, pair in sorted(kept, key=lambda item: item[0])]

    async def _add_each(
        self, keep: list[tuple[ConsumerRecord, Event]], producer: AIOKafkaProducer
    ) -> None:
        for rec, event in keep:
            try:
                self.sink.add(event, rec.topic, rec.partition, rec.offset)
            except Exception as exc:  # one record that cannot be stored must not stop history
                await self._unstorable(raw_record(rec), event, exc, producer)

    async def _unstorable(
        self, raw: RawRecord, event: Event, exc: Exception, producer: AIOKafkaProducer
    ) -> None:
        """Dead-letter a decoded record the sink could not convert into a row, and move on."""
        log.warning("cannot store %s[%d]@%d: %r", raw.topic, raw.partition, raw.offset, exc)
        reason = f"cannot store the {event.event_type} in the history: {type(exc).__name__}: {exc}"
        if raw.topic != self.dlq_topic:  # a dead letter that cannot be stored is only logged
            position = record_event_id(raw.topic, raw.partition, raw.offset)  # replays dedupe
            letter = self.ingestor.dead_letter(raw, reason, "processing", position)
            await self._dead_letter(letter, producer)
        self.sink.add_offset(raw.topic, raw.partition, raw.offset)

    async def _dead_letter(self, letter: DeadLetter, producer: AIOKafkaProducer) -> None:
        self.ctx.metrics.dlq.labels(letter.source_topic, letter.error_kind).inc()
        log.info(
            "dead-lettered %s[%d]@%d: %s",
            letter.source_topic,
            letter.partition,
            letter.offset,
            letter.reason,
        )
        value = self.ctx.codec.encode(letter.stamped())
        self._dlq_sends.append(await producer.send(self.dlq_topic, value, key=letter.key.encode()))

    def _due(self) -> bool:
        return self.sink.due(time.monotonic())

    def _on_retry(self, attempt: int, delay: float, exc: Exception) -> None:
        self.ctx.metrics.sink_failures.inc()
        self.ctx.health["clickhouse"] = f"unavailable: {exc}"
        log.warning(
            "ClickHouse insert failed (attempt %d), retrying in %.1fs: %s", attempt, delay, exc
        )

    async def _flush(self, consumer: AIOKafkaConsumer) -> None:
        rows_before = self.sink.stats.rows_inserted
        batch = self.sink.detach()  # on the loop thread: add() never races with the swap
        dlq_sends, self._dlq_sends = self._dlq_sends, []
        loop = asyncio.get_running_loop()
        offsets = await loop.run_in_executor(self.executor, self.sink.insert, batch)
        await self.heads.after_insert(self.sink.audit_rows(batch))  # only once the rows exist
        if dlq_sends:  # dead letters must be durable before their offsets are committed
            await asyncio.gather(*dlq_sends)
        if offsets:
            await consumer.commit({TopicPartition(t, p): off for (t, p), off in offsets.items()})
        self.ctx.health["clickhouse"] = "ok"
        m = self.ctx.metrics
        m.sink_batches.inc()
        m.sink_insert_seconds.observe(self.sink.stats.last_insert_seconds)
        m.sink_rows.labels("all").inc(self.sink.stats.rows_inserted - rows_before)
        await self._update_lag(consumer)

    async def _resume_audit(self) -> AuditChain:
        """Continue the chain after max(stored tail, signed head): a deleted seq is never reused."""
        db = self.ctx.settings.clickhouse.database
        tail = await asyncio.get_running_loop().run_in_executor(
            self.executor, audit_tail, self.backend, db
        )
        return await self.heads.resume_chain(self.ctx.settings.kafka, tail)

    async def _update_lag(self, consumer: AIOKafkaConsumer) -> None:
        group = f"{self.ctx.settings.kafka.topic_prefix}sink"
        for tp in consumer.assignment():
            high = consumer.highwater(tp)
            if high is not None:
                lag = max(0, high - await consumer.position(tp))
                self.ctx.metrics.lag.labels(group, tp.topic, str(tp.partition)).set(lag)


class _LogRebalance(ConsumerRebalanceListener):
    """Logs partition movements of the sink's consumer group (operators ask "who has what")."""

    async def on_partitions_revoked(self, revoked: Any) -> None:
        log.info(
            "sink: partitions revoked: %s", sorted(f"{tp.topic}[{tp.partition}]" for tp in revoked)
        )

    async def on_partitions_assigned(self, assigned: Any) -> None:
        log.info("sink: partitions assigned: %d", len(assigned))


def register(app: faust.App, ctx: WorkerContext) -> None:
    """Open ClickHouse (this process owns chDB), apply DDL, run the pipeline, serve /sql."""
    backend = open_backend(ctx.settings.clickhouse)
    apply_ddl(backend, ctx.settings.clickhouse)
    executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="clickhouse")
    pipeline = SinkPipeline(ctx, backend, executor)
    endpoint = sql_endpoint(ctx)  # its own read sessions: queries never wait for inserts

    @app.task
    async def sink_loop() -> None:
        await pipeline.run()

    async def on_shutdown(_app: Any, **_: Any) -> None:
        # Before faust cancels the tasks: a drained pipeline has committed what it stored and
        # left the group (its partitions move at once, not after the session timeout), and
        # chDB's sessions are closed by us rather than by interpreter teardown.
        stopped = await pipeline.close(ctx.settings.host.stop_timeout_seconds / 2)
        endpoint.close()
        if stopped:
            await asyncio.get_running_loop().run_in_executor(executor, backend.close)
        executor.shutdown(wait=False)

    # faust's stub types receivers as sync callables only; mode awaits async ones (maybe_async)
    app.on_before_shutdown.connect(on_shutdown)  # type: ignore[arg-type]

    @app.task
    async def access_policies() -> None:
        await endpoint.access.run()

    mount_sql(app, endpoint)
