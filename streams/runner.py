"""Runs one role's rows of the wiring table on Kafka: an aiokafka `getmany` loop around HostCore.

Why aiokafka and not a Faust agent: PERFORMANCE-NOTES.md measured Faust's per-event machinery
as the bottleneck (2.1–4.3k events/s with real work, ~640 ms p99 stalls) against 7.4k/s and
21–27 ms p99 for a plain `getmany` loop doing the same work; and aiokafka's rebalance listener is
awaited before any record of a newly assigned partition is fetched, which is exactly when state
must be restored. The Faust app of the role still serves /metrics, /health and /status.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable, Sequence
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING, Any

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, ConsumerRecord, TopicPartition
from aiokafka.coordinator.assignors.range import RangePartitionAssignor
from aiokafka.errors import CommitFailedError, KafkaError

from agents.contract import Agent
from agents.ingest import RawRecord
from agents.shared import SharedState
from schemas.codec import Codec
from schemas.errors import NovacronError
from streams import kafka_clients
from streams.emit import Emitter
from streams.followed import FollowedTopics
from streams.gc_tuning import tune_gc
from streams.host import HostCore, Hosted, InputTopic
from streams.host_metrics import HostMetrics, host_metrics
from streams.reader import TopicReader
from streams.settings import CheckpointPolicy, Settings
from streams.state import CheckpointBook, KafkaStateStore, StateStore
from streams.topics import CATALOGUE
from streams.wiring import AgentContext, AgentRow, rows_of, state_topic

if TYPE_CHECKING:
    import faust

    from streams.app import WorkerContext

__all__ = ["OffsetCommits", "RoleRunner", "register"]

log = logging.getLogger(__name__)


class RoleRunner:
    """One role's agents, its followed topics and its consumer group."""

    def __init__(self, settings: Settings, role: str, rows: Sequence[AgentRow], *,
                 emitter: Emitter, codec: Codec, health: dict[str, object] | None = None,
                 metrics: HostMetrics | None = None, store: StateStore | None = None) -> None:
        self.settings, self.role, self.health = settings, role, health if health is not None else {}
        self.metrics = metrics or host_metrics()
        self.shared = SharedState(codec)
        ctx = AgentContext(settings, self.shared, role)
        kafka = settings.kafka
        self.topics = list(dict.fromkeys(t for r in rows for t in r.inputs))
        self.broadcast = list(dict.fromkeys(t for r in rows for t in r.broadcast))
        self.followed = FollowedTopics(self.shared, kafka, (t for r in rows for t in r.follows),
                                       metrics=self.metrics, role=role)
        self.core = HostCore(
            role, [self._hosted(row, ctx) for row in rows],
            [*(InputTopic(kafka.topic(t), CATALOGUE[t].event_type, CATALOGUE[t].external_input,
                          needle=_needle(rows, t)) for t in self.topics),
             *(InputTopic(kafka.topic(t), CATALOGUE[t].event_type, CATALOGUE[t].external_input,
                          broadcast=True) for t in self.broadcast)],
            store or KafkaStateStore(kafka, kafka.topic(state_topic(role))),
            emitter.emit, codec, self.metrics, before=self.followed.catch_up,
            inline_records=self.settings.host.inline_records)
        self.commits = OffsetCommits(role)

    def _hosted(self, row: AgentRow, ctx: AgentContext) -> Hosted:
        agent = row.make(ctx)
        if agent.name != row.name:
            raise ValueError(f"wiring row {row.name!r} built an agent named {agent.name!r}")
        wrong = [t for t in (*row.inputs, *row.broadcast)
                 if CATALOGUE[t].event_type not in agent.inputs]
        if wrong:
            raise ValueError(f"agent {row.name!r} does not take the events of {wrong}")
        override = self.settings.host.checkpoints.get(row.name, CheckpointPolicy())
        policy = row.checkpoint.model_copy(update=override.model_dump(exclude_none=True))
        companion = row.companion(agent, ctx) if row.companion is not None else None
        return Hosted(agent, CheckpointBook.of(policy), companion)

    def agent(self, name: str) -> Agent:
        """The role's agent of that name (e.g. for a control API that reads its state)."""
        return next(h.agent for h in self.core.hosted if h.agent.name == name)

    def exclusive(self) -> AbstractAsyncContextManager[None]:
        """No batch, tick or rebalance runs inside (a control API reading agent state)."""
        return self.core.exclusive()

    async def run(self, started: Callable[[], None] | None = None) -> None:
        """Follow, consume, handle and commit until cancelled; checkpoint on the way out.
        `started` is called once the clients are up, before the first batch (the worker
        process passes `tune_gc`)."""
        await self.followed.start()
        await self.core.tick()  # followed topics folded and the deployed model loaded first
        consumer = self._consumer()
        await consumer.start()
        consumer.subscribe([self.settings.kafka.topic(t) for t in self.topics],
                           listener=_Rebalance(self.core))
        ticks = asyncio.create_task(self._ticks())
        readers = [asyncio.create_task(self._broadcast(t)) for t in self.broadcast]
        if started is not None:
            started()
        self.health[self.role] = "ready"
        log.info("%s host ready: agents %s on %s", self.role,
                 [h.agent.name for h in self.core.hosted], self.topics)
        try:
            await self._loop(consumer)
        except Exception as exc:  # e.g. a missing state topic: the worker stops and says why
            self.health[self.role] = f"stopped: {exc}"
            raise
        finally:
            for task in (ticks, *readers):
                task.cancel()
            await asyncio.gather(ticks, *readers, return_exceptions=True)
            await self.commits.close()
            await self.core.shutdown()
            await consumer.stop()
            await self.followed.stop()

    def _consumer(self) -> AIOKafkaConsumer:
        kafka, host = self.settings.kafka, self.settings.host
        return kafka_clients.consumer(
            kafka, group_id=f"{kafka.topic_prefix}{self.role}",
            enable_auto_commit=False, auto_offset_reset="earliest",
            fetch_max_wait_ms=kafka.fetch_max_wait_ms,
            isolation_level="read_committed",  # never a record of an aborted GitOps sync
            # the same partition numbers of every input topic on one member: a resource's
            # metrics and its state stay together (co-partitioned, as with Faust's assignor)
            partition_assignment_strategy=(RangePartitionAssignor,),
            session_timeout_ms=host.session_timeout_ms,
            heartbeat_interval_ms=max(1000, host.session_timeout_ms // 3),
            rebalance_timeout_ms=60_000, max_poll_interval_ms=600_000)

    async def _loop(self, consumer: AIOKafkaConsumer) -> None:
        host = self.settings.host
        while True:
            batches = await consumer.getmany(timeout_ms=host.batch_wait_ms,
                                             max_records=host.batch_size)
            if rewind := self.core.take_rewind():  # their state was relearned: re-read them
                tps = [tp for tp in consumer.assignment() if tp.partition in rewind]
                await self.commits.settle()  # the seek reads the commits: the last one first
                await consumer.seek_to_committed(*tps)
                batches = {tp: r for tp, r in batches.items() if tp.partition not in rewind}
            if batches:
                await self._handle(consumer, batches)

    async def _handle(self, consumer: AIOKafkaConsumer,
                      batches: dict[TopicPartition, list[ConsumerRecord]]) -> None:
        records = [RawRecord(r.topic, r.partition, r.offset, r.key, r.value, r.timestamp)
                   for recs in batches.values() for r in recs]
        try:
            await self.core.handle(records)
        except (KafkaError, OSError) as exc:  # not acknowledged: handle the batch again
            log.warning("%s: batch not sent or not checkpointed (%s); re-reading from the "
                        "committed offsets", self.role, exc)
            await self.commits.settle()
            await consumer.seek_to_committed(*batches)
            return
        await self.commits.start(consumer.commit,
                                 {tp: recs[-1].offset + 1 for tp, recs in batches.items()})

    async def _broadcast(self, logical: str) -> None:
        """Read a broadcast topic from its start and follow it; after a failure (an output not
        sent) read it again from the start: what was handled is in the restored state."""
        retry = self.settings.host.tick_seconds
        while True:
            reader = TopicReader(self.settings.kafka, self.settings.kafka.topic(logical))
            try:
                await reader.start()
                await reader.follow(self._broadcast_records, timeout_ms=1000)
            except (KafkaError, OSError, NovacronError) as exc:
                log.warning("%s: reading %s failed (%s); reading it again from the start",
                            self.role, logical, exc)
                await asyncio.sleep(retry)
            except Exception:  # a bug must not silently end the reader (answers would stall)
                log.exception("%s: reading %s failed; reading it again from the start",
                              self.role, logical)
                await asyncio.sleep(retry)
            finally:
                await reader.stop()

    async def _broadcast_records(self, records: list[ConsumerRecord]) -> None:
        await self.core.handle_broadcast(
            [RawRecord(r.topic, r.partition, r.offset, r.key, r.value, r.timestamp)
             for r in records])

    async def _ticks(self) -> None:
        while True:
            await asyncio.sleep(self.settings.host.tick_seconds)
            try:
                await self.core.tick()
            except Exception:  # a failed tick (broker away) is retried on the next one
                log.exception("%s: tick failed", self.role)


class OffsetCommits:
    """The offset commits of a consumer loop, one in flight at a time, in order.

    A batch's commit is started once the batch is handled and awaited before the next one is
    started (or a seek, or the stop): its round trip (~6 ms on a quiet local broker, about as
    long as handling a small batch) overlaps the next batch instead of delaying it. A commit's
    failure is raised by the next `start` or `settle`, one batch later; a rebalance's refusal
    (`CommitFailedError`) is only logged, as the revoke listener saved the state first.
    """

    def __init__(self, role: str) -> None:
        self.role = role
        self._task: asyncio.Task[None] | None = None

    async def start(self, commit: Callable[[dict[TopicPartition, int]], Awaitable[None]],
                    offsets: dict[TopicPartition, int]) -> None:
        """Settle the commit in flight, then start committing `offsets`."""
        await self.settle()
        self._task = asyncio.create_task(self._commit(commit, offsets))

    async def settle(self) -> None:
        """Wait for the commit in flight, if any (raising its error)."""
        if self._task is not None:
            # shielded: a stop that cancels the loop here leaves the commit to `close`
            await asyncio.shield(self._task)
            self._task = None

    async def close(self) -> None:
        """On the way out: the commit in flight lands; its failure is logged, not raised (its
        batch is read again on the next start)."""
        try:
            await self.settle()
        except (KafkaError, OSError) as exc:
            log.warning("%s: the last offset commit failed (%s); its batch is read again on "
                        "the next start", self.role, exc)
            self._task = None

    async def _commit(self, commit: Callable[[dict[TopicPartition, int]], Awaitable[None]],
                      offsets: dict[TopicPartition, int]) -> None:
        try:
            await commit(offsets)
        except CommitFailedError as exc:  # a rebalance took the partitions: state was saved
            log.info("%s: offsets not committed (%s); the next owner skips what was saved",
                     self.role, exc)


def _needle(rows: Sequence[AgentRow], topic: str) -> bytes | None:
    """The bytes every row reading `topic` requires of its records (None: some row takes all)."""
    needles = {dict(r.needles).get(topic) for r in rows if topic in r.inputs}
    return needles.pop() if len(needles) == 1 else None


class _Rebalance(ConsumerRebalanceListener):
    """Save on revoke, restore on assignment; both awaited before records are fetched."""

    def __init__(self, core: HostCore) -> None:
        self.core = core

    async def on_partitions_revoked(self, revoked: Iterable[Any]) -> None:
        await self.core.revoked({tp.partition for tp in revoked})

    async def on_partitions_assigned(self, assigned: Iterable[Any]) -> None:
        await self.core.assigned({tp.partition for tp in assigned})


def register(app: faust.App, ctx: WorkerContext) -> None:
    """Run the role's rows of the wiring table as a task of its Faust app."""
    runner = RoleRunner(ctx.settings, ctx.role, rows_of(ctx.role, settings=ctx.settings),
                        emitter=ctx.emitter, codec=ctx.codec, health=ctx.health)
    # one copy of followed state per process, fed by one reader per topic; the role's other
    # modules (the control API, GitOps) reach its agents through the runner
    ctx.shared, ctx.followed, ctx.host = runner.shared, runner.followed, runner

    @app.task
    async def host() -> None:
        await runner.run(started=tune_gc)
