"""The decision agent's core: telemetry → masked, confidence-gated DQN decisions → replay rewards.

Pure and torch-free: the Q-network runs in numpy from exported weights (models.dqn.policy).
"""

from __future__ import annotations

import math
import pickle  # noqa: S403 - snapshots are our own state, written and read by our workers
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Protocol

import numpy as np

from agents.contract import Examples, refuse
from agents.decision_config import DecisionConfig
from models.dqn.explain import explanation, impact_met, observed
from models.dqn.features import FEATURES, StateBuilder
from models.dqn.policy import (
    Explorer,
    QFunction,
    QPolicy,
    allowed_confidence,
    best_allowed,
    init_weights,
)
from models.dqn.replay import ReplayBuffer
from models.dqn.reward import reward
from models.dqn.safety import SafetyGuard
from schemas import DQN_ACTIONS, Decision, Event, Insight, MetricSample, Outcome, action_id_for
from schemas.errors import DecodeError

__all__ = ["DecisionConfig", "DecisionEngine", "Explorer", "QFunction", "SampleLog"]

SOURCE = "novacron.decision"
Transition = tuple[np.ndarray, int, float, np.ndarray, bool, np.ndarray]


class SampleLog(Protocol):
    """Keeps recent samples of the decision units (agents.promotion.RecentDemand)."""

    def add(self, sample: MetricSample) -> None: ...
    def forget(self, service: str) -> None: ...


@dataclass
class _Pending:
    state: np.ndarray
    action: int
    action_id: str | None
    at: datetime
    shadow: bool = False
    status: str | None = None
    expected: dict[str, float] = field(default_factory=dict)
    before: dict[str, float] = field(default_factory=dict)
    decided: tuple[str, MetricSample] | None = None
    """A decision's id and sample, kept instead of its action id (a SHA-1) and `before` until an
    outcome or a snapshot reads them: most decisions are superseded by the next one first."""

    def settled(self) -> _Pending:
        """This step with its action id and `before` derived (no longer deferred)."""
        if self.decided is not None:
            decision_id, sample = self.decided
            self.action_id = action_id_for(decision_id)
            self.before = observed(sample, self.expected)
            self.decided = None
        return self

    def __getstate__(self) -> dict[str, object]:
        """The fields of before `decided`, settled: the previous version's workers read it."""
        state = dict(self.settled().__dict__)
        state.pop("decided", None)
        return state


class DecisionEngine:
    """Per service: observe samples and insights, decide, and learn rewards from outcomes."""

    def __init__(self, config: DecisionConfig | None = None,
                 policy: QFunction | None = None) -> None:
        self.config = config or DecisionConfig()
        self.states = StateBuilder(self.config.features)
        self.guard = SafetyGuard(self.config.safety)
        self.policy: QFunction = policy or QPolicy(init_weights(self.config.seed), "untrained")
        self._follow_budget(self.policy)
        self.buffer = ReplayBuffer(self.config.replay_size, len(FEATURES), len(DQN_ACTIONS),
                                   seed=self.config.seed)
        self.explorer: Explorer | None = None
        self.pending: dict[str, _Pending] = {}
        self.new_transitions: list[Transition] = []
        self.impact_checks: Counter[tuple[str, bool]] = Counter()
        self.shadow_scores: dict[str, list[float]] = {}
        self.rewards: dict[str, float] = {}
        """Latest closed-transition reward per service (the host exports it)."""
        self.changed: set[str] = set()
        """Services observed or restored since `take_changed` (the host's gauges of them)."""
        self._valid_version: object = _UNCHECKED
        """The model version a Decision last passed validation with (see `_build`)."""
        self.demand: SampleLog | None = None
        """Where decision-unit samples are also kept (online learning's shadow evaluation)."""
        self.outbox: deque[Event] = deque()
        """Events produced off the event path (promotion verdicts), sent on the next tick."""

    # --- inputs ------------------------------------------------------------------------------
    def observe(self, sample: MetricSample) -> float | None:
        """Add a sample; closes the service's open transition. Returns its reward, if any."""
        self.states.learn_one(sample)
        self.changed.add(sample.resource_id)
        pending = self.pending.get(sample.resource_id)
        if pending is None:
            return None
        if pending.action == 0 or pending.status is not None or pending.shadow:
            return self._close(sample.resource_id, sample)
        if (sample.event_time - pending.at).total_seconds() > self.config.outcome_timeout_seconds:
            del self.pending[sample.resource_id]  # never executed as far as we know: no lesson
        return None

    def observe_insight(self, insight: Insight) -> None:
        """Take a forecast or anomaly from the optimizer into the service's state."""
        self.states.learn_insight(insight)

    def record_outcome(self, outcome: Outcome, next_sample: MetricSample | None = None
                       ) -> float | None:
        """An action's outcome: with the telemetry that followed it becomes a reward."""
        service = self._settles(outcome)
        if service is None:
            return None
        pending = self.pending[service]
        pending.status = outcome.status
        if next_sample is None:
            return None  # the next observed sample closes it
        self.states.learn_one(next_sample)
        return self._close(service, next_sample)

    def _settles(self, outcome: Outcome) -> str | None:
        """The service whose open step this outcome settles (its action's final status), else
        None: an outcome of another action, a step's, a start or a wait changes nothing."""
        service = outcome.resource_id.split("/", 1)[0]
        pending = self.pending.get(service)
        if (pending is None or outcome.status in ("started", "waiting_approval")
                or pending.settled().action_id != outcome.action_id):
            return None
        return service

    # --- decisions ---------------------------------------------------------------------------
    def decide(self, service_id: str, now: datetime) -> Decision | None:
        """The service's next action as a Decision, or None for no action."""
        sample = self.states.latest(service_id)
        state = self.states.state(service_id, now)
        if sample is None or state is None:
            return None
        self.pending.pop(service_id, None)  # an unanswered action teaches nothing
        # The mask and Q-values as Python bools and floats: the argmax, the confidence and the
        # text read a few of them each, cheaper than numpy's per-call cost. When no_action is the
        # only allowed action it is chosen at confidence 1 whatever the Q-values: none are needed.
        allowed, blocked = self.guard.allowed_and_reasons(service_id, sample, now)
        held = self.states.scale_down_held(service_id)
        if held is not None and allowed[_SCALE_DOWN]:  # both fresh per call: changed in place
            allowed[_SCALE_DOWN] = False
            blocked["scale_down"] = f"error budget burning (multiplier {held:.2f})"
        q, index, conf = [], 0, 1.0
        if self.explorer is not None or any(allowed[1:]):
            q = self.policy.q_values(state).tolist()
            index = best_allowed(q, allowed)
            if self.explorer is not None:
                index = self._explore(index, allowed)
            conf = allowed_confidence(q, allowed, self.config.confidence_temperature)
        gated = conf < self.config.min_confidence and self.explorer is None
        if index == 0 or (gated and self.config.low_confidence == "no_action"):
            self.pending[service_id] = _Pending(state, 0, None, now)
            return None
        return self._decision(service_id, sample, state, q, (allowed, blocked), index, conf,
                              gated, now)

    def mask(self, service_id: str, now: datetime) -> np.ndarray | None:
        """The current safety mask of a service (True = allowed)."""
        sample = self.states.latest(service_id)
        return None if sample is None else self.guard.mask(service_id, sample, now)

    # --- model and replay --------------------------------------------------------------------
    def announce(self, event: Event) -> None:
        """Queue an event made elsewhere (e.g. by a trainer thread) for the next tick."""
        self.outbox.append(event)  # deque.append is atomic: safe from another thread

    def load_policy(self, policy: QFunction) -> None:
        """Swap in a new model (e.g. after background training or a rollback)."""
        self.policy = policy
        self._follow_budget(policy)

    def _follow_budget(self, policy: QFunction) -> None:
        """A model loaded from a checkpoint brings the budget it was trained for: the state's
        request-rate feature is read relative to it (models.dqn.features.budget_factor)."""
        if getattr(policy, "from_checkpoint", False):
            self.states.set_budget_reference(getattr(policy, "budget_reference_pct", None))

    def reset(self) -> None:
        """Forget every service's window, history and open transition (a new world or clock)."""
        self.states = StateBuilder(self.config.features)
        self.guard = SafetyGuard(self.config.safety)
        self.pending.clear()

    def take_transitions(self) -> list[Transition]:
        """Transitions completed since the last call, for a trainer running elsewhere."""
        out, self.new_transitions = self.new_transitions, []
        return out

    def take_changed(self) -> set[str]:
        """Services observed or restored since the last call."""
        out, self.changed = self.changed, set()
        return out

    def take_impact_checks(self) -> Counter[tuple[str, bool]]:
        """Executed decisions closed since the last call, counted by (action, whether the outcome
        met the expected impact: models.dqn.explain.impact_met); for the accuracy metric."""
        out, self.impact_checks = self.impact_checks, Counter()
        return out

    # --- internals ---------------------------------------------------------------------------
    def _explore(self, index: int, allowed: list[bool]) -> int:
        assert self.explorer is not None
        pick = self.explorer.pick(np.array(allowed, dtype=bool))
        return index if pick is None or not allowed[pick] else pick

    def _decision(self, service_id: str, sample: MetricSample, state: np.ndarray, q: list[float],
                  masked: tuple[list[bool], dict[str, str]], index: int, conf: float,
                  gated: bool, now: datetime) -> Decision:
        action, cfg = DQN_ACTIONS[index], self.config
        fields = explanation(action, sample, state, q, masked, conf, cfg.impact, self.guard.bounds,
                             self.states.sizing_load(service_id, float(state[3])))
        if gated:
            fields["reasoning"] += " Below min_confidence: escalated for approval."
        impact, version = fields["expected_impact"], self.policy.version
        make = self._maker(version, conf + sum(fields["state"].values()) + sum(impact.values()))
        decision = make(
            sample, source=SOURCE, event_time=now, resource_id=service_id, decision_type=action,
            origin="dqn", mode="shadow" if cfg.shadow else "live", requires_approval=gated,
            model_version=version, **fields)
        self._valid_version = version
        if not cfg.shadow:
            self.guard.record(service_id, action, now)
        self.pending[service_id] = _Pending(state, index, None, now, shadow=cfg.shadow,
                                            expected=impact, decided=(decision.event_id, sample))
        return decision

    def _maker(self, version: str | None, total: float) -> Callable[..., Decision]:
        """How to make the Decision: without validation (`Event.built`) unless validation could
        refuse it. Every value is this engine's own (typed, bounded, names from validated events
        and config) except a number that is not finite (`total`, their sum, is not then) and a
        model version no Decision has passed validation with yet."""
        if version == self._valid_version and math.isfinite(total):
            return Decision.built
        return Decision.caused_by

    def _check_impact(self, pending: _Pending, sample: MetricSample) -> None:
        if pending.action == 0 or pending.shadow or pending.status is None:
            return  # nothing was executed: there is no outcome to judge
        met = impact_met(pending.expected, pending.settled().before,
                         observed(sample, pending.expected), pending.status)
        if met is not None:
            self.impact_checks[(DQN_ACTIONS[pending.action], met)] += 1

    def _close(self, service: str, sample: MetricSample) -> float | None:
        pending = self.pending.pop(service)
        self._check_impact(pending, sample)
        next_state = self.states.state(service, sample.event_time)
        if next_state is None:
            return None
        value = reward(sample, self.config.reward, acted=pending.action != 0)
        if pending.status in ("failed", "timed_out", "sla_breached"):
            value -= self.config.failure_penalty
        if pending.shadow:
            self.shadow_scores.setdefault(DQN_ACTIONS[pending.action], []).append(value)
            return value
        next_mask = self.guard.state_mask(sample)
        self.buffer.push(pending.state, pending.action, value, next_state, False, next_mask)
        self.new_transitions.append((pending.state, pending.action, value, next_state, False,
                                     next_mask))
        return value

    # --- the agent contract (agents/contract.py): one service is one key -----------------------
    name = "decision"
    inputs: tuple[type[Event], ...] = (MetricSample, Insight, Outcome)

    def handle(self, event: Event) -> list[Event]:
        """A decision unit's sample → its Decision (if any); insights and outcomes → state."""
        if isinstance(event, MetricSample):
            return self._on_sample(event)
        if isinstance(event, Insight):
            if event.resource_id in self.states.windows:  # only services this engine decides
                self.observe_insight(event)
            return []
        if isinstance(event, Outcome):
            if event.scope == "action":
                self.record_outcome(event)
            return []
        refuse(self, event)

    def _on_sample(self, sample: MetricSample) -> list[Event]:
        if sample.resource_type not in self.config.resource_types:
            return []
        if self.demand is not None:
            self.demand.add(sample)
        value = self.observe(sample)
        if value is not None:
            self.rewards[sample.resource_id] = value
        decision = self.decide(sample.resource_id, sample.event_time)
        return [] if decision is None else [decision]

    def tick(self, now: datetime) -> list[Event]:
        """Events announced since the last tick (none on the event path itself)."""
        out: list[Event] = []
        while self.outbox:
            out.append(self.outbox.popleft())
        return out

    def state_key(self, event: Event) -> str | None:
        if isinstance(event, MetricSample):
            return event.resource_id if event.resource_type in self.config.resource_types else None
        if isinstance(event, Insight):
            return event.resource_id if event.resource_id in self.states.windows else None
        if isinstance(event, Outcome):  # only an action's outcome that settles its open step
            return self._settles(event) if event.scope == "action" else None
        return None

    def snapshot(self, key: str) -> bytes | None:
        """A service's window, safety history (cooldowns, anti-flap, rate limit) and open step."""
        window, pending = self.states.windows.get(key), self.pending.get(key)
        guard = self.guard.snapshot(key)
        if window is None and pending is None and guard is None:
            return None
        return pickle.dumps((_STATE_VERSION, window, guard, pending),
                            protocol=pickle.HIGHEST_PROTOCOL)

    def restore(self, key: str, blob: bytes) -> None:
        try:
            version, window, guard, pending = pickle.loads(blob)  # noqa: S301 - our state topic
        except Exception as exc:  # pickle raises many types on garbled bytes
            raise DecodeError(f"decision state of {key} is corrupt: {exc}") from exc
        if version != _STATE_VERSION:
            raise DecodeError(f"decision state of {key} has unknown version {version}")
        self.forget(key)
        self.changed.add(key)
        if window is not None:
            self.states.windows[key] = window
        if guard is not None:
            self.guard.restore(key, guard)
        if pending is not None:
            self.pending[key] = pending

    def forget(self, key: str) -> None:
        self.states.forget(key)
        self.guard.forget(key)
        self.pending.pop(key, None)
        self.rewards.pop(key, None)
        if self.demand is not None:
            self.demand.forget(key)

    @classmethod
    def examples(cls) -> Examples:
        """An overloaded service (scale_up forced, then cooldowns) beside a calm one."""
        t0 = datetime(2025, 6, 2, tzinfo=UTC)
        out: list[Event] = []
        for i in range(24):
            at = t0 + timedelta(minutes=i)
            hot = MetricSample(resource_id="svc-a", resource_type="service", event_id=f"a-{i}",
                               event_time=at, cpu_usage=95.0, memory_usage=60.0,
                               network_latency_ms=420.0, error_rate=0.03, request_rate=900.0,
                               active_vms=3, cost_per_hour=0.3)
            calm = MetricSample(resource_id="svc-b", resource_type="service", event_id=f"b-{i}",
                                event_time=at, cpu_usage=30.0 + i % 4, memory_usage=40.0,
                                network_latency_ms=80.0, error_rate=0.0, request_rate=120.0,
                                active_vms=4, cost_per_hour=0.4)
            out += [hot, calm]
            if i % 6 == 5:
                out.append(Insight.caused_by(hot, resource_id="svc-a", kind="forecast",
                                             metric="request_rate", value=1100.0, event_time=at))
                out.append(Outcome(action_id=f"act-{i}", resource_id="svc-a", status="succeeded",
                                   event_time=at))
        out.append(MetricSample(resource_id="vm-1", resource_type="vm", event_time=t0,
                                cpu_usage=50.0))
        return Examples(inputs=out)


_STATE_VERSION = 1
_SCALE_DOWN = DQN_ACTIONS.index("scale_down")
_UNCHECKED = object()
