"""The policy gate in the govern role: its agent's parts, its metrics, /gate and the control API.

The gate itself (`agents.gate_agent.GateAgent`) runs on the generic host like every other agent
(its row in `streams/wiring.py`); this module builds it from the settings and the role's shared
state, exports its metrics, and serves the control API (`agents.control_api`) under /api/…
"""

from __future__ import annotations

import logging
from collections import Counter as Tally
from collections.abc import Sequence
from typing import Any

import faust
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from agents.contract import Agent
from agents.control_api import ControlApi
from agents.gate import PolicyGate
from agents.gate_agent import GateAgent
from agents.gate_facts import ResourceFacts
from agents.shared import SharedState
from policies.backends import make_engine
from policies.engine import compile_errors
from policies.registry import PolicyRegistry
from policies.source import SHIPPED_POLICY_DIR, load_directory
from runbooks.loader import Library
from runbooks.resolve import Resolver
from schemas import Event, PolicyVerdict
from schemas.envelope import utc_now
from streams.app import WorkerContext
from streams.metrics import REGISTRY
from streams.settings import Settings

__all__ = ["POLICY_DIR", "GateCompanion", "GateMetrics", "build_gate", "register"]

log = logging.getLogger(__name__)

POLICY_DIR = SHIPPED_POLICY_DIR
"""The shipped Rego policies, seeded into the registry when the `policies` topic lacks them."""


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
        self.latency = Histogram(
            "novacron_policy_evaluation_seconds", "Latency of one policy evaluation",
            buckets=(0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05),
            registry=registry)

    @classmethod
    def for_registry(cls, registry: CollectorRegistry = REGISTRY) -> GateMetrics:
        if id(registry) not in cls._cache:
            cls._cache[id(registry)] = cls(registry)
        return cls._cache[id(registry)]


def build_gate(settings: Settings, shared: SharedState) -> GateAgent:
    """The gate over the role's one policy registry, baselines and runbook registry."""
    # the process's one registry, folded from the `policies` topic by the host's followed
    # readers: the gate judges, the control API changes and GitOps plans against the same one
    registry = shared.policies
    registry.config = settings.policies  # the trust settings
    # the same library and action-type mapping as the execute role: the gate judges what runs
    runbooks = Library(settings.executor.library_dirs)
    if shared.runbooks.on_change is not None:
        raise RuntimeError("the runbook registry already reports its changes elsewhere")
    shared.runbooks.on_change = runbooks.register
    gate = PolicyGate(make_engine(registry, settings.policy_engine), settings.gate,
                      Resolver(runbooks.get, settings.executor.runbooks))
    return GateAgent(gate, ResourceFacts(shared.desired), seed=lambda: _seed(registry, settings))


def _seed(registry: PolicyRegistry, settings: Settings) -> list[Event]:
    """The shipped (and configured) policies the `policies` topic does not hold yet."""
    files = load_directory(POLICY_DIR)
    if settings.policy_dir is not None:
        files += load_directory(settings.policy_dir)
    seeded: list[Event] = list(registry.seed(files))
    log.info("gate: %d policies (%d seeded)", len(registry.current()), len(seeded))
    return seeded


class GateCompanion:
    """The gate's metrics, from the events it emits and the state it holds."""

    def __init__(self, agent: GateAgent, registry: PolicyRegistry,
                 metrics: GateMetrics | None = None) -> None:
        self.agent, self.registry = agent, registry
        self.metrics = metrics or GateMetrics.for_registry()
        self._counted: Tally[str] = Tally()

    @classmethod
    def of(cls, agent: Agent, shared: SharedState) -> GateCompanion:
        assert isinstance(agent, GateAgent)
        return cls(agent, shared.policies)

    def observe(self, events: Sequence[Event]) -> None:
        for e in events:
            if isinstance(e, PolicyVerdict):
                self.metrics.verdicts.labels(e.outcome).inc()
                self.metrics.latency.observe(e.latency_ms / 1000)
        self._sync()

    def tick(self) -> None:
        self._sync()
        self.metrics.policies.set(len(self.registry.active()))

    def forgotten(self, key: str) -> None:
        self.metrics.pending.set(len(self.agent.gate.pending()))

    def _sync(self) -> None:
        for status, n in self.agent.answered.items():
            if n > self._counted[status]:
                self.metrics.approvals.labels(status).inc(n - self._counted[status])
                self._counted[status] = n
        self.metrics.pending.set(len(self.agent.gate.pending()))


class _Readiness:
    """What /status says of the gate, read when asked."""

    def __init__(self, agent: GateAgent) -> None:
        self.agent = agent

    def __str__(self) -> str:
        return "ready" if self.agent.ready else "loading policies"


def register(app: faust.App, ctx: WorkerContext) -> None:
    """/gate and the control API over the gate the role's host runs."""
    if ctx.host is None or ctx.shared is None:
        raise RuntimeError("the govern role registers streams.runner before streams.gate")
    host, agent = ctx.host, ctx.host.agent(GateAgent.name)
    assert isinstance(agent, GateAgent)
    registry = ctx.shared.policies
    ctx.health["gate"] = _Readiness(agent)  # /status: "ready" once the policies are seeded
    api = ControlApi(agent.gate.engine, registry, agent.gate, ctx.settings.api,
                     validate_rego=compile_errors)

    @app.page("/gate")
    async def gate_status(web: faust.web.View, request: faust.web.Request) -> faust.web.Response:
        rid = request.query.get("resource", "")
        async with host.exclusive():
            return web.json({
                "ready": agent.ready, "policies": len(registry.active()),
                "pending": len(agent.gate.pending()), "resources_with_facts": len(agent.facts),
                **({"resource": rid, "in_incident": agent.gate.in_incident(rid, utc_now())}
                   if rid else {}),
            })

    _mount_api(app, ctx, api, agent)


def _mount_api(app: faust.App, ctx: WorkerContext, api: ControlApi, agent: GateAgent) -> None:
    """The ControlApi under /api/… (its own paths after the prefix)."""
    assert ctx.host is not None
    host = ctx.host

    async def call(view: faust.web.View, request: faust.web.Request, path: str) -> Any:
        if not agent.ready:
            return view.json({"error": "the gate is still loading its policies"}, status=503)
        body = await request.read()
        # the host's lock: no batch evaluates (or changes the registry) while the API does
        async with host.exclusive():
            status, data = api.handle(request.method, "/" + path, dict(request.headers), body)
            events = api.drain_events()
            records = api.drain_records()
        if events:
            await ctx.emitter.emit(events)  # approvals come back to the gate through the topic
        for topic, key, value in records:  # runbooks, ignore rules (registry API)
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
