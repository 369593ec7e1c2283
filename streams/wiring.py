"""The wiring table: which agent runs in which role, on which topics. One row per agent.

A role's host consumes the union of its rows' input topics in one consumer group, decodes each
record once and hands it to every agent of the role that takes its type; followed topics are
compacted topics every process folds in full (`agents.shared.SharedState`). Per-key state goes to
the role's compacted `{role}-state` topic. Factories import their agent lazily, so a role never
loads a library it must not (regopy and torch never share a process: streams/roles.py).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from agents.contract import Agent
from agents.shared import FOLLOWED_TOPICS, SharedState
from streams.host import Companion
from streams.settings import CheckpointPolicy, Settings
from streams.topics import CATALOGUE, state_topics

__all__ = ["WIRING", "AgentContext", "AgentRow", "roles", "rows_of", "state_topic"]


@dataclass(frozen=True)
class AgentContext:
    """What an agent factory gets: settings, the role's shared state, the role name."""

    settings: Settings
    shared: SharedState
    role: str


Factory = Callable[[AgentContext], Agent]
CompanionFactory = Callable[[Agent, AgentContext], Companion]


@dataclass(frozen=True)
class AgentRow:
    """One agent in one role."""

    role: str
    """The worker role (process) that runs it."""
    name: str
    """The agent's name (unique; must equal `agent.name`)."""
    make: Factory
    """Builds the agent (imports it lazily: the role's import guard is already installed)."""
    inputs: tuple[str, ...]
    """Logical topics the role's consumer group reads for it (their event types must be in
    `agent.inputs`; types it takes from other agents of the role arrive in-process)."""
    follows: tuple[str, ...] = ()
    """Compacted topics it needs folded into SharedState before its first input."""
    broadcast: tuple[str, ...] = ()
    """Topics every instance of the role reads in full, from the start, outside its consumer
    group, and hands to the agent (records keyed by something other than its state key: the
    answer to a pending request may sit on any partition)."""
    needles: tuple[tuple[str, bytes], ...] = ()
    """(topic, bytes): of that input topic it takes only records whose raw value contains the
    bytes; the rest are skipped undecoded (when every agent of the role reading it says so)."""
    checkpoint: CheckpointPolicy = field(
        default_factory=lambda: CheckpointPolicy(every_events=1, max_age_seconds=30.0))
    """Default checkpoint policy (Settings.host.checkpoints overrides it by name)."""
    companion: CompanionFactory | None = None
    """Host-side extras: the agent's own gauges, model switches."""
    runs: Callable[[Settings], bool] | None = None
    """Whether the settings run it (None: always); a row that does not run is left out of its
    role's host, its topics and its state."""

    def __post_init__(self) -> None:
        unknown = [t for t in (*self.inputs, *self.broadcast) if t not in CATALOGUE]
        unknown += [t for t, _ in self.needles if t not in self.inputs]
        unknown += [t for t in self.follows if t not in FOLLOWED_TOPICS]
        if unknown:
            raise ValueError(f"wiring row {self.name!r}: unknown topics {unknown}")


def state_topic(role: str) -> str:
    """The logical name of a role's compacted state topic."""
    return state_topics([role])[0]


def _optimizer(ctx: AgentContext) -> Agent:
    from agents.optimizer import Optimizer

    return Optimizer(ctx.settings.optimizer)


def _optimizer_gauges(agent: Agent, ctx: AgentContext) -> Companion:
    from streams.optimizer import OptimizerCompanion

    return OptimizerCompanion.of(agent, ctx.settings.host.gauges_seconds)


def _decision(ctx: AgentContext) -> Agent:
    from streams.decision import build_engine

    return build_engine(ctx.settings)


def _decision_host(agent: Agent, ctx: AgentContext) -> Companion:
    from streams.decision import DecisionCompanion

    return DecisionCompanion.of(agent, ctx.settings, ctx.shared)


def _drift(ctx: AgentContext) -> Agent:
    from agents.drift import DriftDetector

    return DriftDetector(ctx.settings.drift, ctx.shared.ignores, store=ctx.shared.desired)


def _drift_gauges(agent: Agent, ctx: AgentContext) -> Companion:
    from agents.drift import DriftDetector
    from streams.drift import DriftCompanion

    return DriftCompanion(ctx.shared, detector=agent if isinstance(agent, DriftDetector) else None)


def _compliance(ctx: AgentContext) -> Agent:
    from agents.compliance_agent import ComplianceAgent

    return ComplianceAgent.of(ctx.settings.compliance, ctx.shared)


def _compliance_gauges(agent: Agent, ctx: AgentContext) -> Companion:
    from agents.compliance_agent import ComplianceAgent
    from streams.compliance import ComplianceCompanion

    checker = agent.checker if isinstance(agent, ComplianceAgent) else None
    return ComplianceCompanion(checker)


def _deploy_watch(ctx: AgentContext) -> Agent:
    from agents.gitops.rollback import DeployWatch

    return DeployWatch(ctx.settings.deploy_watch, ctx.shared)


def _gate(ctx: AgentContext) -> Agent:
    from streams.gate import build_gate

    return build_gate(ctx.settings, ctx.shared)


def _gate_metrics(agent: Agent, ctx: AgentContext) -> Companion:
    from streams.gate import GateCompanion

    return GateCompanion.of(agent, ctx.shared)


def _gitops(ctx: AgentContext) -> Agent:
    from agents.gitops import GitopsReconciler
    from policies.compliance import load_library
    from runbooks.loader import Library

    ctx.shared.policies.config = ctx.settings.policies  # the registry's trust settings
    comp = ctx.settings.compliance
    controls = load_library(comp.controls_dir, comp.rego_dir, comp.parameters)
    return GitopsReconciler(ctx.settings.gitops, ctx.shared, controls=controls,
                            library=Library(ctx.settings.executor.library_dirs))


def _gitops_helper(agent: Agent, ctx: AgentContext) -> Companion:
    from agents.gitops import GitopsReconciler
    from streams.gitops import GitopsHelper

    assert isinstance(agent, GitopsReconciler)
    return GitopsHelper(agent, ctx.settings)


WIRING: tuple[AgentRow, ...] = (
    AgentRow("learn", "optimizer", _optimizer, ("metrics",), companion=_optimizer_gauges,
             # a snapshot is ~0.6 MB and ~3 ms: every 500 samples or 5 minutes per resource,
             # at most 10 per batch (~30 ms), so resources due together do not stall one batch
             checkpoint=CheckpointPolicy(every_events=500, max_age_seconds=300.0,
                                         max_per_batch=10)),
    # insights come from the optimizer in-process; a service that was decided on is saved
    # before its sample is committed (the decision's cooldown is never lost); window updates
    # every 100 samples or 30 s: pickling each touched service per batch cost ~10 % of the role
    AgentRow("learn", "decision", _decision, ("metrics", "outcomes"),
             follows=("model-versions",), companion=_decision_host,
             checkpoint=CheckpointPolicy(every_events=100, max_age_seconds=30.0, on_output=True)),
    # anomalies come from the optimizer in-process; GitOps syncs from the followed topic; the
    # executor's verified git commits (step outcomes) are deploys too
    AgentRow("learn", "deploy-watch", _deploy_watch, ("metrics", "outcomes"), follows=("gitops",),
             runs=lambda settings: settings.deploy_watch.enabled),
    # decisions and anomalies are keyed by resource, as its state; answers are keyed by request,
    # so every instance reads all of them (one for a request held elsewhere waits, bounded);
    # the shipped policies are seeded on its first tick, before the consumer starts
    AgentRow("govern", "gate", _gate, ("decisions", "insights"), companion=_gate_metrics,
             follows=("policies", "runbooks", "desired"), broadcast=("approvals",),
             needles=(("insights", b"anomaly"),)),
    AgentRow("govern", "drift", _drift, ("config",), follows=("desired", "drift-ignores"),
             companion=_drift_gauges),
    # acceptances must be known before a violation is reported: the topic is folded first
    AgentRow("govern", "compliance", _compliance, ("config",),
             follows=("compliance-attestations",), companion=_compliance_gauges),
    # commits come from the helper (git I/O off the event loop), not from a topic; what is
    # serving and what is live are the followed topics
    AgentRow("govern", "gitops", _gitops, (), companion=_gitops_helper,
             follows=("gitops", "policies", "runbooks", "desired", "drift-ignores",
                      "compliance-attestations")),
)
"""Every agent the generic host runs (the executor and ingest still have their own)."""


def rows_of(role: str, table: tuple[AgentRow, ...] = WIRING, settings: Settings | None = None
            ) -> list[AgentRow]:
    """The rows of one role, in table order (the order agents see each event in); with
    `settings`, only the rows they run."""
    return [r for r in table if r.role == role
            and (settings is None or r.runs is None or r.runs(settings))]


def roles(table: tuple[AgentRow, ...] = WIRING) -> list[str]:
    """Roles that have at least one row."""
    return list(dict.fromkeys(r.role for r in table))
