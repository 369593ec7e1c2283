"""Kafka wiring of the decision agent (learn role): metrics, insights, outcomes in; decisions out.

The per-event path is the numpy forward pass of `agents.decision.DecisionEngine` (no torch);
online training runs in a background thread (`models.dqn.background`) that loads torch only in
this role, publishes new weights as versioned checkpoints and swaps them in.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import faust
from prometheus_client import Counter, Gauge
from pydantic_settings import BaseSettings, SettingsConfigDict

from agents.decision import DecisionEngine
from models.dqn.checkpoints import CheckpointStore
from models.dqn.policy import QPolicy
from schemas import Decision, Insight, MetricSample, Outcome
from streams.app import WorkerContext
from streams.metrics import REGISTRY

__all__ = ["DecisionHostConfig", "register"]

log = logging.getLogger(__name__)
SHIPPED_MODEL = Path(__file__).resolve().parents[1] / "models" / "dqn" / "pretrained"

DECISIONS = Counter(
    "novacron_decisions_total",
    "Decisions emitted, by action and mode",
    ["action", "mode"],
    registry=REGISTRY,
)
REWARD = Gauge(
    "novacron_decision_last_reward",
    "Reward of the latest closed transition",
    ["service"],
    registry=REGISTRY,
)
IMPACT_CHECKS = Counter(
    "novacron_decision_impact_checks_total",
    "Executed decisions judged against their expected impact, by action and met (true: the "
    "action succeeded and every predicted change moved the predicted way)",
    ["action", "met"],
    registry=REGISTRY,
)
MODEL = Gauge(
    "novacron_decision_model_info",
    "Loaded DQN model version (value 1)",
    ["version"],
    registry=REGISTRY,
)


class DecisionHostConfig(BaseSettings):
    """How the decision agent is hosted (env `NOVACRON_DECISION_HOST__*`)."""

    model_config = SettingsConfigDict(env_prefix="NOVACRON_DECISION_HOST__", extra="ignore")

    resource_types: tuple[str, ...] = ("service", "scaling_group")
    """Resource types that are decision units (other samples are ignored here)."""
    online_training: bool = False
    """Train in the background from live outcomes and swap new weights in (versioned)."""
    publish_every: int = 2_000
    """Gradient steps between published (and checkpointed) models when training online."""


def load_policy(store: CheckpointStore) -> QPolicy | None:
    """The current checkpoint, else the model shipped with the package, else None (untrained)."""
    version = store.current()
    if version is not None:
        return QPolicy(store.load(version), version)
    shipped = CheckpointStore(SHIPPED_MODEL)
    if shipped.current() is not None:
        version = shipped.current()
        return QPolicy(shipped.load(version), f"shipped-{version}")
    return None


def register(app: faust.App, ctx: WorkerContext) -> None:
    """Decision agents on metrics, insights and outcomes."""
    host = DecisionHostConfig()
    store = CheckpointStore(ctx.settings.data_dir / "models" / "dqn")
    policy = load_policy(store)
    engine = DecisionEngine(ctx.settings.decision, policy)
    MODEL.labels(engine.policy.version or "untrained").set(1)
    if policy is None:
        log.warning(
            "no trained DQN model (run `novacron train dqn`); decisions come from random "
            "weights and are gated by min_confidence"
        )
    trainer = _trainer(engine, store, host) if host.online_training else None

    @app.agent(ctx.raw_topic(app, "metrics"))
    async def decide(stream: faust.StreamT[bytes]) -> None:
        async for values in stream.take(500, within=0.2):
            samples = ctx.decode_all(values, MetricSample)
            decisions = [
                d
                for s in samples
                if s.resource_type in host.resource_types
                for d in _decide(engine, ctx, s)
            ]
            await ctx.emitter.emit(decisions)
            _count_impact_checks(engine)
            if trainer is not None:
                trainer.submit(engine.take_transitions())

    @app.agent(ctx.raw_topic(app, "insights"))
    async def insights(stream: faust.StreamT[bytes]) -> None:
        async for values in stream.take(500, within=0.2):
            for insight in ctx.decode_all(values, Insight):
                engine.observe_insight(insight)

    @app.agent(ctx.raw_topic(app, "outcomes"))
    async def outcomes(stream: faust.StreamT[bytes]) -> None:
        async for values in stream.take(200, within=0.2):
            for outcome in ctx.decode_all(values, Outcome):
                if outcome.scope == "action":
                    engine.record_outcome(outcome)


def _decide(engine: DecisionEngine, ctx: WorkerContext, sample: MetricSample) -> list[Decision]:
    reward = engine.observe(sample)
    if reward is not None:
        REWARD.labels(sample.resource_id).set(reward)
    started = time.perf_counter()
    decision = engine.decide(sample.resource_id, sample.event_time)
    ctx.metrics.decision_latency.observe(time.perf_counter() - started)
    ctx.metrics.events.labels("decision", "metrics").inc()
    if decision is None:
        return []
    DECISIONS.labels(decision.decision_type, decision.mode).inc()
    return [decision]


def _count_impact_checks(engine: DecisionEngine) -> None:
    for (action, met), n in engine.take_impact_checks().items():
        IMPACT_CHECKS.labels(action, str(met).lower()).inc(n)


def _trainer(engine: DecisionEngine, store: CheckpointStore, host: DecisionHostConfig):  # type: ignore[no-untyped-def]
    from models.dqn.background import BackgroundTrainer
    from models.dqn.config import DQNConfig

    def publish(weights, grad_steps: int) -> None:  # type: ignore[no-untyped-def]
        meta = store.save(
            weights,
            {
                "parent": engine.policy.version,
                "config": {"grad_steps": grad_steps, "origin": "online"},
            },
        )
        engine.load_policy(QPolicy(weights, meta.version))
        log.info("online training published model %s after %d steps", meta.version, grad_steps)

    current = store.current()
    initial = store.load(current) if current is not None else None
    trainer = BackgroundTrainer(
        DQNConfig(), publish, initial=initial, publish_every=host.publish_every
    )
    trainer.start()
    return trainer
