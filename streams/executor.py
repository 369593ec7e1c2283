"""Kafka wiring of the executor: actions in, runbooks at most once, outcomes out, approvals."""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import asynccontextmanager
from typing import Any, Literal

import faust
from aiokafka import ConsumerRecord
from aiokafka.errors import KafkaError
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from agents.executor import Executor, ExecutorConfig
from runbooks.engine import WorkflowResult
from runbooks.journal import WORKFLOW
from schemas import Action, Approval, Event, Outcome
from schemas.errors import NonRetryableError, RetryableError
from streams.app import WorkerContext
from streams.journal import JOURNAL_TOPIC, KafkaJournal
from streams.metrics import REGISTRY
from streams.reader import TopicReader
from streams.runbook_topic import runbook_fold
from streams.settings import ExecutorKafkaConfig, KafkaConfig

__all__ = ["ExecutorHost", "ExecutorMetrics", "KafkaApprovals",
           "KeyedLocks", "executor_config", "register"]

log = logging.getLogger(__name__)
Answer = Literal["approved", "rejected", "timeout"]
_ANSWERS: dict[str, Answer] = {"approved": "approved", "rejected": "rejected", "expired": "timeout"}


class ExecutorMetrics:
    """Prometheus metrics of the executor (one set per registry)."""

    _cache: dict[int, ExecutorMetrics] = {}

    def __init__(self, registry: CollectorRegistry | None) -> None:
        self.workflows = Counter(
            "novacron_executor_workflows_total", "Workflow executions, by runbook and final status "
            "(skipped = redelivered or unmapped)", ["runbook", "status"], registry=registry)
        self.duration = Histogram(
            "novacron_executor_workflow_duration_seconds", "Wall time of one action in this worker",
            ["runbook"], registry=registry,
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600))
        self.step_failures = Counter(
            "novacron_executor_step_failures_total", "Failed step attempts; final=false when the "
            "step will be retried", ["runbook", "step", "final"], registry=registry)
        self.actions = Counter(
            "novacron_executor_actions_total", "Actions handled, by action type (types without "
            "a runbook mapping as 'other') and final workflow status", ["action_type", "status"],
            registry=registry)
        self.sla_breaches = Counter(
            "novacron_executor_sla_breaches_total", "Workflows that finished after their "
            "runbook's SLA", ["runbook"], registry=registry)
        self.retries = Counter(
            "novacron_executor_kafka_retries_total", "Actions retried after a Kafka error",
            registry=registry)
        self.inflight = Gauge("novacron_executor_inflight", "Actions running now",
                              registry=registry)

    @classmethod
    def for_registry(cls, registry: CollectorRegistry = REGISTRY) -> ExecutorMetrics:
        """The process's metric set (a registry refuses the same names twice)."""
        if id(registry) not in cls._cache:
            cls._cache[id(registry)] = cls(registry)
        return cls._cache[id(registry)]


class KafkaApprovals:
    """The engine's `ApprovalWaiter`, fed by the `approvals` topic.

    Every execute worker must see every answer (the waiting step may run anywhere), so each reads
    all partitions from the beginning with no consumer group at all: a process-unique group
    without its broker-side leftovers. Answers are remembered, so one that arrives before its
    waiter (or while the worker was down) is not missed.
    """

    def __init__(self, kafka: KafkaConfig, topic: str,
                 decode: Callable[[list[bytes | None]], list[Approval]],
                 cache: int = 100_000) -> None:
        self.kafka, self.topic, self.decode, self.cache = kafka, topic, decode, cache
        self._answers: OrderedDict[str, Answer] = OrderedDict()
        self._waiting: dict[str, list[asyncio.Future[Answer]]] = {}

    async def __call__(self, request_id: str, timeout: float) -> Answer:
        if request_id in self._answers:
            return self._answers[request_id]
        fut: asyncio.Future[Answer] = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(request_id, []).append(fut)
        try:
            return await asyncio.wait_for(fut, timeout)
        except TimeoutError:
            return "timeout"
        finally:
            waiters = self._waiting.get(request_id, [])
            if fut in waiters:
                waiters.remove(fut)
            if not waiters:
                self._waiting.pop(request_id, None)

    def resolve(self, approval: Approval) -> None:
        """Take one approval event: answers wake their waiters, pending items are ignored."""
        answer = _ANSWERS.get(approval.status)
        if answer is None:
            return
        self._answers[approval.request_id] = answer
        self._answers.move_to_end(approval.request_id)
        while len(self._answers) > self.cache:
            self._answers.popitem(last=False)
        for fut in self._waiting.pop(approval.request_id, []):
            if not fut.done():
                fut.set_result(answer)

    async def run(self, retry_seconds: float = 5.0) -> None:
        """Read the topic until cancelled; a Kafka error restarts the reader after a pause."""
        while True:
            try:
                await self._read()
            except (KafkaError, RetryableError, NonRetryableError) as exc:  # e.g. no topic yet
                log.warning("approvals reader: %s; restarting in %.0fs", exc, retry_seconds)
                await asyncio.sleep(retry_seconds)

    async def _read(self) -> None:
        reader = TopicReader(self.kafka, self.topic)  # every partition, from the beginning
        await reader.start()
        try:
            await reader.follow(self._take, timeout_ms=1000)
        finally:
            await reader.stop()

    async def _take(self, records: list[ConsumerRecord]) -> None:
        for approval in self.decode([r.value for r in records]):
            self.resolve(approval)


class KeyedLocks:
    """One asyncio lock per key, dropped when nobody holds or waits for it."""

    def __init__(self) -> None:
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}

    @asynccontextmanager
    async def hold(self, key: str) -> AsyncIterator[None]:
        lock, users = self._locks.get(key, (asyncio.Lock(), 0))
        self._locks[key] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[key]
            if users == 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, users - 1)

    def __len__(self) -> int:
        return len(self._locks)


class ExecutorHost:
    """The thin host around `Executor`: journal per partition, one run per action id, metrics.

    `handle` returns only when the action's workflow finished (or the journal shows it finished
    before), so the agent acknowledges the Kafka record after the work, never before.
    """

    def __init__(self, config: ExecutorConfig, journal: KafkaJournal, approvals: KafkaApprovals,
                 metrics: ExecutorMetrics, emit: Callable[[list[Event]], Awaitable[int]],
                 wiring: ExecutorKafkaConfig) -> None:
        self.journal, self.metrics, self.wiring = journal, metrics, wiring
        self._emit_batch = emit
        self._runbooks: dict[str, str] = {}  # running action id → runbook id (metric labels)
        self.locks = KeyedLocks()
        self.executor = Executor(config, journal=journal, emit=self._emit,
                                 wait_for_approval=approvals)

    async def handle(self, action: Action, partition: int) -> WorkflowResult:
        """Run one action from an `actions` partition; retries Kafka errors until it finishes."""
        await self._retrying(lambda: self.journal.load([partition]))
        aid = action.action_id
        async with self.locks.hold(aid):  # a duplicate waits, then finds the journal finished
            self.journal.bind(aid, partition)
            runbook = self.executor.runbook_id(action) or "none"
            self._runbooks[aid] = runbook
            self.metrics.inflight.inc()
            t0 = time.monotonic()
            try:
                result = await self._retrying(lambda: self._run(action))
            finally:
                self.metrics.inflight.dec()
                self._runbooks.pop(aid, None)
                self.journal.unbind(aid)
        self._count(action, runbook, result, time.monotonic() - t0)
        return result

    def _count(self, action: Action, runbook: str, result: WorkflowResult, seconds: float) -> None:
        self.metrics.workflows.labels(runbook, result.status).inc()
        self.metrics.duration.labels(runbook).observe(seconds)
        # the type comes from the event: only mapped types become label values (bounded series)
        known = action.action_type in self.executor.config.runbooks
        self.metrics.actions.labels(action.action_type if known else "other", result.status).inc()
        if result.sla_breached:
            self.metrics.sla_breaches.labels(runbook).inc()

    async def _run(self, action: Action) -> WorkflowResult:
        try:
            return await self.executor.handle(action)
        except (RetryableError, KafkaError):
            raise
        except Exception as exc:  # an engine bug: never run this action again, say why
            log.exception("executor failed on action %s", action.action_id)
            return await self._abandon(action, exc)

    async def _abandon(self, action: Action, exc: Exception) -> WorkflowResult:
        aid = action.action_id
        entry = await self.journal.get(aid)
        if entry is None or entry.workflow is None:
            await self.journal.record(aid, WORKFLOW, "started")
        await self.journal.record(aid, WORKFLOW, "finished")
        await self._emit(Outcome.caused_by(
            action, source=self.executor.config.engine.source, action_id=aid, scope="action",
            status="failed", resource_id=action.resource_id, action_type=action.action_type,
            error=f"executor error: {type(exc).__name__}: {exc}"[:8192]))
        return WorkflowResult(aid, self.executor.runbook_id(action) or "", "failed", error=str(exc))

    async def _retrying(self, call: Callable[[], Awaitable[Any]]) -> Any:
        delay = self.wiring.retry_initial_seconds
        while True:
            try:
                return await call()
            except (RetryableError, KafkaError) as exc:
                # the journal tells the next attempt what already happened: nothing runs twice
                self.metrics.retries.inc()
                log.warning("executor: Kafka error, retrying in %.1fs: %s", delay, exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.wiring.retry_max_seconds)

    async def _emit(self, event: Event) -> None:
        if isinstance(event, Outcome) and event.scope == "step" and event.status in (
                "failed", "timed_out"):
            final = "retry_in_s" not in event.output
            self.metrics.step_failures.labels(self._runbook_of(event.action_id),
                                              event.step_id or "", str(final).lower()).inc()
        await self._emit_batch([event])

    def _runbook_of(self, action_id: str) -> str:
        aid = action_id
        while aid not in self._runbooks and "/" in aid:  # sub-workflows count under their root
            aid = aid.rsplit("/", 1)[0]
        return self._runbooks.get(aid, "unknown")

    async def assigned(self, partitions: Iterable[int]) -> None:
        """A rebalance finished: forget lost partitions, replay the new ones before any action."""
        mine = set(partitions)
        self.journal.keep_only(mine)
        await self._retrying(lambda: self.journal.load(mine))

    async def aclose(self) -> None:
        await self.executor.aclose()
        await self.journal.close()


def executor_config(config: ExecutorConfig, env: dict[str, str] | None = None) -> ExecutorConfig:
    """The configured executor, plus `notify_webhook` from `NOVACRON_NOTIFY_WEBHOOK` if unset."""
    webhook = (os.environ if env is None else env).get("NOVACRON_NOTIFY_WEBHOOK")
    if not webhook or "notify_webhook" in config.defaults:
        return config
    return config.model_copy(update={"defaults": {**config.defaults, "notify_webhook": webhook}})


def register(app: faust.App, ctx: WorkerContext) -> None:
    """The executor agent on `actions`, the approvals reader and the rebalance hook."""
    wiring = ctx.settings.executor_kafka
    config = executor_config(ctx.settings.executor)
    if "notify_webhook" not in config.defaults:
        log.warning("executor: NOVACRON_NOTIFY_WEBHOOK is unset; actions mapped to the notify "
                    "runbook will be rejected (missing ${notify_webhook})")
    kafka = ctx.settings.kafka
    approvals = KafkaApprovals(kafka, ctx.topic("approvals"),
                               lambda values: ctx.decode_all(values, Approval),
                               wiring.approvals_cache)
    host = ExecutorHost(config, KafkaJournal(kafka, ctx.topic(JOURNAL_TOPIC)), approvals,
                        ExecutorMetrics.for_registry(), ctx.emitter.emit, wiring)
    name = ctx.topic("actions")

    @app.agent(ctx.raw_topic(app, "actions"), concurrency=wiring.concurrency)
    async def execute(stream: faust.StreamT[bytes]) -> None:
        # one event per actor at a time: Faust acks it when the loop comes back for the next one,
        # i.e. after the workflow finished; offsets are committed only up to the first gap
        async for event in stream.events():
            for action in ctx.decode_all([event.value], Action):  # ingest dead-letters bad ones
                await host.handle(action, event.message.partition)
            ctx.metrics.events.labels("executor", "actions").inc()

    @app.task
    async def approvals_reader() -> None:
        await approvals.run()

    @app.task
    async def runbook_registry() -> None:  # the gate folds the same topic the same way
        topic = ctx.topic("runbooks")
        reader = TopicReader(kafka, topic)
        await reader.start()
        try:
            await reader.follow(runbook_fold(topic, host.executor.library))
        finally:
            await reader.stop()

    async def on_shutdown(_app: Any, **_: Any) -> None:
        await host.aclose()  # after the consumer stopped: in-flight actions are done or cancelled

    async def on_assigned(_app: Any, assigned: set[Any], **_: Any) -> None:
        await host.assigned(tp.partition for tp in assigned if tp.topic == name)

    # faust's stub types receivers as sync callables only; mode awaits async ones (maybe_async)
    app.on_partitions_assigned.connect(on_assigned)  # type: ignore[arg-type]
    app.on_before_shutdown.connect(on_shutdown)  # type: ignore[arg-type]
