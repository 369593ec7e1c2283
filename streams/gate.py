"""Kafka wiring of the policy gate: decisions → verdicts, actions and approvals; the control API."""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, cast

import faust
from aiokafka import ConsumerRecord
from prometheus_client import CollectorRegistry, Counter, Gauge

from agents.control_api import ControlApi
from agents.gate import GateResult, PolicyGate
from agents.gate_facts import ResourceFacts
from policies.backends import make_engine
from policies.engine import compile_errors
from policies.source import load_directory
from runbooks.loader import Library
from runbooks.resolve import Resolver
from schemas import Approval, Decision, Event, Insight
from schemas.envelope import utc_now
from streams.app import WorkerContext
from streams.gate_state import GateCheckpoints, positioned, track_partitions
from streams.metrics import REGISTRY
from streams.reader import Handler, TopicReader
from streams.state import CheckpointBook, KafkaStateStore, Position
from streams.topics import state_topics

__all__ = ["POLICY_DIR", "GateHost", "GateMetrics", "register"]

log = logging.getLogger(__name__)

POLICY_DIR = Path(__file__).resolve().parents[1] / "policies" / "rego"
"""The shipped Rego policies, seeded into the registry when the `policies` topic lacks them."""
BATCH_SIZE = 200  # decisions are few: the window (host.gate_batch_ms) bounds their wait
EXPIRE_SECONDS = 1.0  # period of the pending-approval expiry timer
UNMATCHED_MAX = 10_000  # answers kept for requests whose partition has not been restored yet


class GateMetrics:
    """Prometheus metrics of the gate (one set per registry)."""

    _cache: dict[int, GateMetrics] = {}

    def __init__(self, registry: CollectorRegistry) -> None:
        self.verdicts = Counter("novacron_gate_verdicts_total", "Gate verdicts by outcome",
                                ["outcome"], registry=registry)
        self.approvals = Counter("novacron_gate_approvals_total",
                                 "Approval events handled, by status", ["status"],
                                 registry=registry)
        self.pending = Gauge("novacron_gate_pending_approvals", "Decisions waiting for a person",
                             registry=registry)
        self.policies = Gauge("novacron_gate_policies_enabled", "Enabled policies",
                              registry=registry)

    @classmethod
    def for_registry(cls, registry: CollectorRegistry = REGISTRY) -> GateMetrics:
        if id(registry) not in cls._cache:
            cls._cache[id(registry)] = cls(registry)
        return cls._cache[id(registry)]


class GateHost:
    """The thin host around PolicyGate: batches of decisions and approvals in, events out; every
    resource a batch changed is checkpointed (`GateCheckpoints`) before its offsets can commit."""

    def __init__(self, ctx: WorkerContext, gate: PolicyGate, facts: ResourceFacts,
                 emit: Callable[[list[Event]], Awaitable[int]], checkpoints: GateCheckpoints
                 ) -> None:
        self.ctx, self.gate, self.facts, self.emit = ctx, gate, facts, emit
        self.cp = checkpoints
        self.metrics = GateMetrics.for_registry()
        self.receivers: tuple[Any, ...] = ()
        self.unmatched: OrderedDict[str, Approval] = OrderedDict()
        """Answers to requests not (yet) restored here: a partition may arrive after them."""

    async def decisions(self, items: Iterable[tuple[Decision, Position]]) -> list[Event]:
        out: list[Event] = []
        async with self.cp.lock:
            items = list(items)
            out.extend(await self._restore({pos[1] for _, pos in items}))
            fresh = [(d, pos) for d, pos in items if not self.cp.replayed(d.resource_id, pos)]
            decisions = [d for d, _ in fresh]
            try:  # the whole stream batch in one engine call per policy set
                results = self.gate.evaluate_batch(
                    [(d, self.facts.context_for(d)) for d in decisions])
            except Exception:  # one by one, so a bad decision fails alone
                results = [self._one(d) for d in decisions]
            for result in results:
                out.extend(self._count(result))
            for d, pos in fresh:
                self.cp.touched(d.resource_id, pos)
            await self._publish(out)
        return out

    def _one(self, d: Decision) -> GateResult:
        try:
            return self.gate.evaluate(d, self.facts.context_for(d))
        except Exception as exc:  # one bad decision must not stop the gate for everyone else
            log.exception("gate failed on decision %s", d.event_id)
            reason = f"gate failed, failing closed: {type(exc).__name__}: {str(exc)[:500]}"
            return GateResult(self.gate.refusal(d, reason))  # never without a verdict

    def _count(self, result: GateResult) -> list[Event]:
        self.ctx.metrics.policy_latency.observe(result.verdict.latency_ms / 1000)
        self.metrics.verdicts.labels(result.verdict.outcome).inc()
        return result.events

    async def _publish(self, out: Sequence[Event]) -> None:
        """Send, then save what changed (under the lock): a crash in between re-sends, never
        loses; actions carry ids derived from their decision, so a re-send is one action."""
        if out:
            await self.emit(list(out))
        await self.cp.save_due()
        self.metrics.pending.set(len(self.gate.pending()))

    async def approvals(self, approvals: Iterable[Approval]) -> list[Event]:
        async with self.cp.lock:
            out = self._answer(a for a in approvals if a.status in ("approved", "rejected"))
            await self._publish(out)
        return out

    def _answer(self, approvals: Iterable[Approval]) -> list[Event]:
        out: list[Event] = []
        for a in approvals:
            key = self.gate.state.resource_of(a.request_id)
            if key is None:  # not pending here (yet): kept in case its partition arrives
                self.unmatched[a.request_id] = a
                while len(self.unmatched) > UNMATCHED_MAX:
                    self.unmatched.popitem(last=False)
                continue
            self.unmatched.pop(a.request_id, None)
            self.metrics.approvals.labels(a.status).inc()
            out.extend(self.gate.on_approval(a))
            self.cp.changed(key)
        return out

    async def _restore(self, partitions: Iterable[int]) -> list[Event]:
        """Restore partitions not loaded yet; answers that were waiting for them act now."""
        await self.cp.ensure(partitions)
        return self._answer([a for rid, a in list(self.unmatched.items())
                             if self.gate.state.resource_of(rid) is not None])

    async def assigned(self, partitions: set[int]) -> None:
        async with self.cp.lock:
            self.cp.keep_only(partitions)
            await self._publish(await self._restore(partitions))

    async def revoked(self, partitions: set[int]) -> None:
        async with self.cp.lock:
            await self.cp.revoked(partitions)

    async def shutdown(self) -> None:
        """Graceful stop: every resource changed since its last save is saved."""
        async with self.cp.lock:
            await self.cp.shutdown()

    async def expire(self) -> list[Approval]:
        async with self.cp.lock:
            out = self.gate.expire(utc_now())
            if out:
                self.metrics.approvals.labels("expired").inc(len(out))
                for a in out:
                    self.cp.changed(a.resource_id)
                await self._publish(out)
        return out

    async def observe(self, insights: Iterable[tuple[Insight, Position]]) -> None:
        async with self.cp.lock:
            items = list(insights)
            out = await self._restore({pos[1] for _, pos in items})
            for i, pos in items:
                if not self.cp.replayed(i.resource_id, pos):
                    self.gate.observe_insight(i)
                    self.cp.touched(i.resource_id, pos)
            await self._publish(out)


def _decoder(ctx: WorkerContext, kind: type[Any], sink: Callable[[list[Any]], Awaitable[Any]]
             ) -> Handler:
    async def handle(records: list[ConsumerRecord]) -> None:
        await sink(ctx.decode_all([r.value for r in records if r.value is not None], kind))
    return handle


def register(app: faust.App, ctx: WorkerContext) -> None:
    """Policies from their topic (seeded from policies/rego), the gate agents, /api/… views."""
    if ctx.shared is None or ctx.followed is None:
        raise RuntimeError("the govern role registers streams.runner before streams.gate")
    # the process's one registry, folded from the `policies` topic by the host's followed
    # readers: the gate judges, the control API changes and GitOps plans against the same one
    registry = ctx.shared.policies
    registry.config = ctx.settings.policies  # the trust settings
    engine = make_engine(registry, ctx.settings.policy_engine)
    # the same library and action-type mapping as the execute role: the gate judges what runs
    runbooks = Library(ctx.settings.executor.library_dirs)
    gate = PolicyGate(engine, ctx.settings.gate,
                      Resolver(runbooks.get, ctx.settings.executor.runbooks))
    followed = ctx.followed
    # one reader and one copy per process: drift diffs against the same baselines; the GitOps
    # reconciler sees the same runbook registry the gate resolves against
    followed.need("desired", "runbooks", "policies")
    facts = ResourceFacts(ctx.shared.desired)
    if ctx.shared.runbooks.on_change is not None:
        raise RuntimeError("the runbook registry already reports its changes elsewhere")
    ctx.shared.runbooks.on_change = runbooks.register
    store = KafkaStateStore(ctx.settings.kafka, ctx.topic(state_topics(["govern"])[0]))
    host = GateHost(ctx, gate, facts, ctx.emitter.emit,
                    GateCheckpoints(gate, store, CheckpointBook(1, 30.0)))
    api = ControlApi(engine, registry, gate, ctx.settings.api, validate_rego=compile_errors)
    ready = asyncio.Event()
    kafka = ctx.settings.kafka

    # approvals are keyed by request id, not by resource: the instance holding a pending item
    # may not own the approval's partition, so every instance reads every partition, from the
    # start: an answer given while no gate ran acts once its request is restored
    reads: list[tuple[TopicReader, Handler]] = [
        (TopicReader(kafka, ctx.topic("approvals")), _decoder(ctx, Approval, host.approvals)),
    ]

    @app.task
    async def gate_state() -> None:
        try:
            for reader, handle in reads:
                await reader.start()
                await reader.catch_up(handle)
            # the host read `desired` and `policies` to their ends: facts and policies are known
            await followed.ready.wait()
            files = load_directory(POLICY_DIR)
            if ctx.settings.policy_dir is not None:
                files += load_directory(ctx.settings.policy_dir)
            seeded = registry.seed(files)
            await ctx.emitter.emit(seeded)
            log.info("gate ready: %d policies (%d seeded), %d resources with facts",
                     len(registry.current()), len(seeded), len(facts))
            host.metrics.policies.set(len(registry.active()))
            ctx.health["gate"] = "ready"
            ready.set()
            await asyncio.gather(*(reader.follow(handle) for reader, handle in reads))
        finally:
            for reader, _ in reads:
                await reader.stop()
            await host.shutdown()

    host.receivers = track_partitions(app, {ctx.topic("decisions"), ctx.topic("insights")},
                                      host.revoked, host.assigned)

    @app.agent(ctx.raw_topic(app, "decisions"))
    async def evaluate(stream: faust.StreamT[bytes]) -> None:
        await ready.wait()  # no verdict before the policies are loaded
        within = ctx.settings.host.gate_batch_ms / 1000
        async for batch in cast(faust.Stream, stream).take_events(BATCH_SIZE, within=within):
            await host.decisions(positioned(ctx, batch, Decision))
            ctx.metrics.events.labels("gate", "decisions").inc(len(batch))

    @app.agent(ctx.raw_topic(app, "insights"))
    async def incidents(stream: faust.StreamT[bytes]) -> None:
        async for batch in cast(faust.Stream, stream).take_events(1000, within=0.5):
            # forecasts dominate this topic: only records naming an anomaly are decoded (the kind
            # is a plain string in JSON and in Avro alike)
            wanted = [e for e in batch if e.value is not None and b"anomaly" in e.value]
            await host.observe(positioned(ctx, wanted, Insight))
            ctx.metrics.events.labels("gate", "insights").inc(len(batch))

    @app.timer(EXPIRE_SECONDS)
    async def expire() -> None:
        if ready.is_set():
            await host.expire()
            host.metrics.policies.set(len(registry.active()))

    @app.page("/gate")
    async def gate_status(web: faust.web.View, request: faust.web.Request) -> faust.web.Response:
        rid = request.query.get("resource", "")
        return web.json({
            "ready": ready.is_set(), "policies": len(registry.active()),
            "pending": len(gate.pending()), "resources_with_facts": len(facts),
            **({"resource": rid, "in_incident": gate.in_incident(rid, utc_now())} if rid else {}),
        })

    _mount_api(app, ctx, api, ready)


def _mount_api(app: faust.App, ctx: WorkerContext, api: ControlApi, ready: asyncio.Event) -> None:
    """The ControlApi under /api/… (its own paths after the prefix)."""

    async def call(view: faust.web.View, request: faust.web.Request, path: str) -> Any:
        if not ready.is_set():
            return view.json({"error": "the gate is still loading its policies"}, status=503)
        body = await request.read()
        status, data = api.handle(request.method, "/" + path, dict(request.headers), body)
        events = api.drain_events()
        if events:
            await ctx.emitter.emit(events)  # approvals come back to the gate through the topic
        for topic, key, value in api.drain_records():  # runbooks, ignore rules (registry API)
            await ctx.emitter.send_raw(topic, key, value)
        return view.json(data, status=status)

    class ControlApiView(faust.web.View):
        async def get(self, request: faust.web.Request, path: str = "") -> Any:
            return await call(self, request, path)

        async def post(self, request: faust.web.Request, path: str = "") -> Any:
            return await call(self, request, path)

        async def put(self, request: faust.web.Request, path: str = "") -> Any:
            return await call(self, request, path)

        async def delete(self, request: faust.web.Request, path: str = "") -> Any:
            return await call(self, request, path)

    app.page("/api/{path:.*}")(ControlApiView)
