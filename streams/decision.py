"""The decision agent's host side (learn role): its model, its gauges, online training.

The engine runs in the generic host (streams/wiring.py): metrics and outcomes from the role's
consumer, insights handed over in-process by the optimizer, its per-service state (cooldowns,
anti-flap, rate limits) checkpointed to `learn-state`. The per-event path is the numpy forward
pass of `agents.decision.DecisionEngine` (no torch); online training runs in a background thread
(`models.dqn.background`) that loads torch only in this role.

The deployed model version is the latest record of the compacted `model-versions` topic
(`novacron model rollback vN` writes it from any machine); every learn worker switches to it on
its next tick and a restarted one starts with it. Weights come from the local checkpoint folder
(`<data_dir>/models/dqn`), else from the models shipped in the package. Online training
(streams/online.py) continues from the deployed model and promotes a candidate only after a shadow
evaluation; a promotion is a local checkpoint version, a rollback or deploy rebases the trainer.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from prometheus_client import Counter, Gauge

from agents.contract import Agent
from agents.decision import DecisionEngine
from agents.shared import SharedState
from models.dqn.checkpoints import CheckpointStore
from models.dqn.policy import QPolicy
from schemas import Decision, Event
from schemas.errors import NovacronError, RejectedError
from streams.metrics import REGISTRY
from streams.settings import Settings

__all__ = ["SHIPPED_MODEL", "DecisionCompanion", "build_engine", "load_policy", "policy_for"]

log = logging.getLogger(__name__)
SHIPPED_MODEL = Path(__file__).resolve().parents[1] / "models" / "dqn" / "pretrained"

DECISIONS = Counter("novacron_decisions_total", "Decisions emitted, by action and mode",
                    ["action", "mode"], registry=REGISTRY)
REWARD = Gauge("novacron_decision_last_reward", "Reward of the latest closed transition",
               ["service"], registry=REGISTRY)
IMPACT_CHECKS = Counter(
    "novacron_decision_impact_checks_total",
    "Executed decisions judged against their expected impact, by action and met (true: the "
    "action succeeded and every predicted change moved the predicted way)",
    ["action", "met"],
    registry=REGISTRY,
)
BUDGET = Gauge("novacron_decision_budget_multiplier",
                "SLO budget tracking: how much heavier the service's demand looks to the DQN "
                "(1: within its budget; above 1: it has been using its violation budget up)",
                ["service"], registry=REGISTRY)
MODEL = Gauge("novacron_decision_model_info", "Loaded DQN model version (value 1)", ["version"],
              registry=REGISTRY)


def model_store(settings: Settings) -> CheckpointStore:
    """The local checkpoint folder of this process."""
    return CheckpointStore(settings.data_dir / "models" / "dqn")


def load_policy(store: CheckpointStore) -> QPolicy | None:
    """The current checkpoint, else the model shipped with the package, else None (untrained)."""
    version = store.current()
    if version is not None:
        return _checkpoint_policy(store, version, version)
    shipped = CheckpointStore(SHIPPED_MODEL)
    if (version := shipped.current()) is not None:
        return _checkpoint_policy(shipped, version, f"shipped-{version}")
    return None


def _checkpoint_policy(store: CheckpointStore, version: str, label: str) -> QPolicy:
    """A checkpoint's weights with the SLO budget it was trained for (None: before budgets)."""
    policy = QPolicy(store.load(version), label)
    features = store.meta(version).config.get("decision", {}).get("features", {})
    policy.budget_reference_pct = features.get("budget_reference_pct")
    policy.from_checkpoint = True
    return policy


def policy_for(version: str, store: CheckpointStore) -> QPolicy:
    """A deployed version's weights: the local folder first, then the shipped models.

    RejectedError when neither has it (the worker keeps the model it runs).
    """
    shipped = CheckpointStore(SHIPPED_MODEL)
    plain = version.removeprefix("shipped-")
    if version == plain and plain in {m.version for m in store.list_versions()}:
        return _checkpoint_policy(store, plain, plain)
    if plain in {m.version for m in shipped.list_versions()}:
        return _checkpoint_policy(shipped, plain, f"shipped-{plain}")
    raise RejectedError(f"model {version} is neither under {store.root} nor shipped")


def build_engine(settings: Settings) -> DecisionEngine:
    """The engine with the local or shipped model (the deployed pointer follows on the first
    tick, before any input: see DecisionCompanion.tick)."""
    policy = load_policy(model_store(settings))
    if policy is None:
        log.warning("no trained DQN model (run `novacron train dqn`); decisions come from random "
                    "weights and are gated by min_confidence")
    decision = settings.decision.model_copy(deep=True)
    decision.features.slo_budget_pct = settings.slo.budget_pct  # the SLO the user states
    decision.features.budget_tracking = decision.features.budget_tracking.judged_by(settings.slo)
    return DecisionEngine(decision, policy)


class DecisionCompanion:
    """Decision counters and reward gauges, the deployed-model switch, the online trainer."""

    def __init__(self, engine: DecisionEngine, store: CheckpointStore, shared: SharedState,
                 settings: Settings | None = None) -> None:
        self.engine, self.store, self.shared = engine, store, shared
        self.online = _online(engine, store, settings) if settings is not None else None
        self._deployed: str | None = None  # the pointer value last acted on
        self._shown = self.version  # the version the model gauge shows
        MODEL.labels(self.version).set(1)

    @classmethod
    def of(cls, agent: Agent, settings: Settings, shared: SharedState) -> DecisionCompanion:
        if not isinstance(agent, DecisionEngine):
            raise TypeError(f"the decision host needs a DecisionEngine, not {type(agent)}")
        return cls(agent, model_store(settings), shared, settings)

    @property
    def version(self) -> str:
        return self.engine.policy.version or "untrained"

    def observe(self, events: Sequence[Event]) -> None:
        for d in events:
            if isinstance(d, Decision):
                DECISIONS.labels(d.decision_type, d.mode).inc()
        _count_impact_checks(self.engine)
        transitions = self.engine.take_transitions()  # drained even without a trainer
        if self.online is not None:
            self.online.trainer.submit(transitions)

    def tick(self) -> None:
        # only the services with news: a walk over every service each second grew with the
        # resources held (two gauge updates each, on the event loop)
        rewards, windows = self.engine.rewards, self.engine.states.windows
        for service in self.engine.take_changed():
            if (value := rewards.get(service)) is not None:
                REWARD.labels(service).set(value)
            if (window := windows.get(service)) is not None:
                BUDGET.labels(service).set(window.pressure)
        deployed = self.shared.model
        if deployed is not None and deployed.version != self._deployed:
            self._deployed = deployed.version
            self.switch(deployed.version)
        self._show()  # a promotion swaps the model from the trainer thread

    def switch(self, version: str) -> None:
        """Load a deployed version; an unknown one is logged and the running model kept."""
        try:
            policy = policy_for(version, self.store)
        except NovacronError as exc:
            log.error("deployed model %s not loaded, still running %s: %s", version,
                      self.version, exc)
            return
        self.engine.load_policy(policy)
        self._show()
        log.info("decision model switched to %s", self.version)
        if self.online is not None:
            self.online.rebase(self.version)

    def _show(self) -> None:
        if self.version == self._shown:
            return
        with contextlib.suppress(KeyError):  # the gauge shows the running version only
            MODEL.remove(self._shown)
        self._shown = self.version
        MODEL.labels(self.version).set(1)

    def forgotten(self, key: str) -> None:
        with contextlib.suppress(KeyError):  # the next owner of the service exports it
            REWARD.remove(key)


def _count_impact_checks(engine: DecisionEngine) -> None:
    for (action, met), n in engine.take_impact_checks().items():
        IMPACT_CHECKS.labels(action, str(met).lower()).inc(n)


def _online(engine: DecisionEngine, store: CheckpointStore, settings: Settings) -> Any:
    """Safe online learning when enabled and a trained model runs; else None (logged)."""
    if not settings.decision_host.online_training:
        return None
    from streams.online import OnlineLearning

    try:
        online = OnlineLearning(engine, store, CheckpointStore(SHIPPED_MODEL),
                                settings.decision_host, settings.slo)
    except NovacronError as exc:
        log.error("online training not started: %s", exc)
        return None
    online.start()
    return online
