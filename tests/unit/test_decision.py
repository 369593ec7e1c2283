"""The decision engine: safety mask (property-based), confidence gate, reasoning, rewards."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agents.decision import DecisionConfig, DecisionEngine, QFunction
from models.dqn.policy import QPolicy, init_weights
from models.dqn.safety import SafetyConfig
from schemas import DQN_ACTIONS, Insight, MetricSample, Outcome, action_id_for
from tests.strategies import around, ints_around

T0 = datetime(2026, 1, 5, tzinfo=UTC)


class FixedQ:
    """A stand-in model that prefers one action by a chosen margin."""

    version: str | None = "fixed"

    def __init__(self, favourite: str, margin: float = 1.0) -> None:
        self.q = np.zeros(len(DQN_ACTIONS), dtype=np.float32)
        self.q[DQN_ACTIONS.index(favourite)] = margin

    def q_values(self, state: np.ndarray) -> np.ndarray:
        return self.q


def _sample(t: int = 0, **fields: object) -> MetricSample:
    base: dict[str, object] = {
        "resource_id": "svc-0", "cpu_usage": 85.0, "memory_usage": 60.0,
        "network_latency_ms": 150.0, "request_rate": 850.0, "error_rate": 0.0, "active_vms": 10,
        "cost_per_hour": 1.0, "event_time": T0 + timedelta(minutes=t)}
    base.update(fields)
    return MetricSample(**base)  # type: ignore[arg-type]


def test_inference_path_never_imports_torch() -> None:
    code = ("import sys, agents.decision, agents.simulator, models.dqn, models.dqn.checkpoints;"
            "assert 'torch' not in sys.modules, 'torch was imported'")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_masked_action_is_never_chosen_even_when_favoured() -> None:
    engine = DecisionEngine(policy=FixedQ("scale_down", 100.0))
    engine.observe(_sample(error_rate=0.2))  # high errors: scale_down is masked
    decision = engine.decide("svc-0", T0)
    assert decision is None or decision.decision_type != "scale_down"


def test_decision_carries_reasoning_impact_and_chain() -> None:
    engine = DecisionEngine(policy=FixedQ("scale_up"))
    sample = _sample()
    engine.observe(sample)
    decision = engine.decide("svc-0", T0)
    assert decision is not None and decision.decision_type == "scale_up"
    assert decision.causation_id == sample.event_id
    assert decision.correlation_id == sample.correlation_id
    assert "scale_up by" in decision.reasoning and "cpu 85%" in decision.reasoning
    assert decision.params["delta"] >= 1
    assert decision.expected_impact["active_vms"] == decision.params["delta"]
    assert decision.expected_impact["cpu_usage"] < 0
    assert set(decision.state) == {"cpu", "memory", "latency", "request_rate", "error_rate",
                                   "active_vms", "cost", "forecast_delta", "anomaly_score"}
    assert decision.model_version == "fixed"


def test_confidence_gate_escalates_or_drops() -> None:
    tight = FixedQ("scale_up", margin=0.001)  # near-tie: low confidence
    escalate = DecisionEngine(DecisionConfig(min_confidence=0.5), tight)
    escalate.observe(_sample())
    decision = escalate.decide("svc-0", T0)
    assert decision is not None and decision.requires_approval
    assert decision.confidence < 0.5 and "escalated" in decision.reasoning
    drop = DecisionEngine(DecisionConfig(min_confidence=0.5, low_confidence="no_action"), tight)
    drop.observe(_sample())
    assert drop.decide("svc-0", T0) is None
    sure = DecisionEngine(DecisionConfig(min_confidence=0.5), FixedQ("scale_up", margin=5.0))
    sure.observe(_sample())
    confident = sure.decide("svc-0", T0)
    assert confident is not None and not confident.requires_approval
    assert confident.confidence > 0.9


def test_outcome_and_next_sample_become_a_transition() -> None:
    engine = DecisionEngine(policy=FixedQ("scale_up"))
    engine.observe(_sample())
    decision = engine.decide("svc-0", T0)
    assert decision is not None
    outcome = Outcome(action_id=action_id_for(decision.event_id), status="succeeded",
                      resource_id="svc-0", action_type="scale_up")
    value = engine.record_outcome(outcome, _sample(1, network_latency_ms=900.0))
    assert value is not None and value < -1.0  # the SLO was missed after the action
    (state, action, reward, next_state, done, mask), = engine.take_transitions()
    assert action == DQN_ACTIONS.index("scale_up") and reward == value and len(engine.buffer) == 1


def test_only_an_outcome_that_settles_the_open_step_names_a_key() -> None:
    """The host saves the key an input names before committing it: the executor's starts, its
    step outcomes and another action's outcomes change nothing here, so they name none."""
    engine = DecisionEngine(policy=FixedQ("scale_up"))
    engine.observe(_sample())
    decision = engine.decide("svc-0", T0)
    assert decision is not None
    mine = action_id_for(decision.event_id)

    def outcome(**fields: object) -> Outcome:
        base: dict[str, object] = {"action_id": mine, "status": "succeeded", "scope": "action",
                                   "resource_id": "svc-0", "action_type": "scale_up"}
        return Outcome(**{**base, **fields})  # type: ignore[arg-type]

    before = engine.snapshot("svc-0")
    for other in (outcome(status="started"), outcome(status="waiting_approval"),
                  outcome(scope="step", step_id="commit"), outcome(action_id="act-else"),
                  outcome(resource_id="svc-9")):
        assert engine.state_key(other) is None
        assert engine.handle(other) == [] and engine.snapshot("svc-0") == before
    final = outcome(status="failed")
    assert engine.state_key(final) == "svc-0"
    engine.handle(final)
    assert engine.pending["svc-0"].status == "failed" and engine.snapshot("svc-0") != before


def test_no_action_is_learned_from_the_next_sample() -> None:
    engine = DecisionEngine(policy=FixedQ("no_action"))
    engine.observe(_sample())
    assert engine.decide("svc-0", T0) is None
    assert engine.observe(_sample(1)) is not None and len(engine.buffer) == 1


def test_shadow_decisions_are_scored_not_learned_or_limited() -> None:
    engine = DecisionEngine(DecisionConfig(shadow=True), FixedQ("scale_up"))
    engine.observe(_sample())
    decision = engine.decide("svc-0", T0)
    assert decision is not None and decision.mode == "shadow"
    engine.observe(_sample(1))
    assert len(engine.buffer) == 0 and len(engine.shadow_scores["scale_up"]) == 1
    assert engine.guard.actions_in_window("svc-0", T0) == 0


def test_insights_feed_the_state() -> None:
    engine = DecisionEngine(policy=FixedQ("no_action"))
    engine.observe(_sample())
    engine.observe_insight(Insight(resource_id="svc-0", kind="forecast", metric="request_rate",
                                   value=1275.0, event_time=T0))
    engine.observe_insight(Insight(resource_id="svc-0", kind="anomaly", score=0.9, event_time=T0))
    state = engine.states.state("svc-0", T0)
    assert state is not None
    assert abs(state[7] - 0.5) < 1e-6 and abs(state[8] - 0.9) < 1e-6
    stale = engine.states.state("svc-0", T0 + timedelta(hours=1))
    assert stale is not None and stale[8] != 0.9


# Each reading lands on the limits of the test's SafetyConfig (and one step either side) about
# half the time: a uniform draw almost never tests `>` against `>=`, and an error rate drawn
# from [0, 1] blocks scale_down through its own rule 99 % of the time, hiding the others.
samples: st.SearchStrategy[dict] = st.builds(
    dict,
    cpu=around(80.0, lo=0, hi=100, step=0.1), latency=around(200.0, lo=0, hi=3000, step=0.1),
    errors=st.just(0.0) | around(0.01, lo=0, hi=1, step=0.0001),
    vms=ints_around(2, 12, lo=0, hi=25), booting=st.just(0) | st.integers(0, 5),
    cache=st.sampled_from([0.0, 1.0]), throttle=st.sampled_from([0.0, 1.0]),
    gap=st.just(0) | ints_around(120, 300, 600, lo=0, hi=601), seed=st.integers(0, 3),
    favourite=st.sampled_from(DQN_ACTIONS))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(samples, min_size=1, max_size=25))
def test_no_sequence_of_states_breaks_a_safety_limit(steps: list[dict]) -> None:
    limits = SafetyConfig(min_vms=2, max_vms=12, max_actions_per_window=4, window_seconds=600,
                          cooldown_seconds=120, scale_down_after_up_seconds=300)
    first = steps[0]
    # Random networks, or a model that always wants one action (often a masked one).
    policy: QFunction = (QPolicy(init_weights(first["seed"])) if first["seed"] < 2
              else FixedQ(first["favourite"], 100.0))
    engine = DecisionEngine(DecisionConfig(safety=limits, min_confidence=0.0), policy)
    now = T0
    taken: list[tuple[datetime, str]] = []
    for step in steps:
        now += timedelta(seconds=step["gap"])
        extra = {"booting_vms": float(step["booting"]), "cache_enabled": step["cache"],
                 "throttle_active": step["throttle"]}
        sample = _sample(cpu_usage=step["cpu"], network_latency_ms=step["latency"],
                         error_rate=step["errors"], active_vms=step["vms"], event_time=now,
                         extra=extra)
        engine.observe(sample)
        mask = engine.mask("svc-0", now)
        decision = engine.decide("svc-0", now)
        if decision is None:
            continue
        kind = decision.decision_type
        assert mask is not None and mask[DQN_ACTIONS.index(kind)], f"{kind} was masked"
        provisioned = step["vms"] + step["booting"]
        if kind == "scale_up":
            assert provisioned + decision.params["delta"] <= limits.max_vms
        if kind == "scale_down":
            assert provisioned - decision.params["delta"] >= limits.min_vms
            assert step["errors"] <= limits.high_error_rate
            assert step["latency"] <= limits.high_latency_ms
            assert not any(k == "scale_up" and (now - t).total_seconds() < 300 for t, k in taken)
        assert not any(k == kind and (now - t).total_seconds() < 120 for t, k in taken)
        taken.append((now, kind))
        recent = [t for t, _ in taken if (now - t).total_seconds() < 600]
        assert len(recent) <= limits.max_actions_per_window


def test_the_property_test_sees_decisions_and_masks() -> None:
    # Guard against a vacuous property test: the favoured action is taken when allowed, and
    # the rate limit then blocks everything.
    limits = SafetyConfig(max_actions_per_window=2, cooldown_seconds=0)
    engine = DecisionEngine(DecisionConfig(safety=limits), FixedQ("rebalance_load", 100.0))
    kinds = []
    for t in range(4):
        engine.observe(_sample(t))
        decision = engine.decide("svc-0", T0 + timedelta(minutes=t))
        kinds.append(decision.decision_type if decision else None)
    assert kinds == ["rebalance_load", "rebalance_load", None, None]


def test_reset_forgets_history_for_a_new_world() -> None:
    engine = DecisionEngine(DecisionConfig(safety=SafetyConfig(max_actions_per_window=1)),
                            FixedQ("rebalance_load", 100.0))
    engine.observe(_sample(60))
    assert engine.decide("svc-0", T0 + timedelta(hours=1)) is not None
    engine.reset()  # a new episode whose clock starts earlier
    engine.observe(_sample(0))
    decision = engine.decide("svc-0", T0)
    assert decision is not None and decision.decision_type == "rebalance_load"


def test_saturated_service_shows_its_overload_without_a_known_capacity() -> None:
    engine = DecisionEngine(policy=FixedQ("no_action"))
    engine.observe(_sample(cpu_usage=100.0, error_rate=0.5))
    state = engine.states.state("svc-0")
    assert state is not None and abs(state[3] - 2.0) < 1e-6  # twice the capacity is offered


def test_sustained_overload_forces_scale_up_over_the_model() -> None:
    # A model that wants nothing (as an untrained or out-of-distribution one may) must not
    # leave a saturated service saturated: after overload_seconds scale_up is the only choice.
    limits = SafetyConfig(overload_seconds=180, cooldown_seconds=120)
    engine = DecisionEngine(DecisionConfig(safety=limits), FixedQ("no_action", 100.0))
    kinds = []
    for t in range(6):
        engine.observe(_sample(t, cpu_usage=100.0, network_latency_ms=2000.0, error_rate=0.3))
        decision = engine.decide("svc-0", T0 + timedelta(minutes=t))
        kinds.append(decision.decision_type if decision else None)
        if decision is not None:
            assert "scale_up forced" in decision.reasoning and not decision.requires_approval
    # 0-2 min: the model's no_action; 3 min: forced; 4 min: cooldown; 5 min: forced again.
    assert kinds == [None, None, None, "scale_up", None, "scale_up"]


def test_overload_clock_restarts_when_the_service_recovers() -> None:
    engine = DecisionEngine(DecisionConfig(), FixedQ("no_action", 100.0))
    hot = {"cpu_usage": 100.0, "network_latency_ms": 900.0}
    for t, fields in enumerate([hot, hot, {"cpu_usage": 60.0}, hot, hot, hot]):
        engine.observe(_sample(t, **fields))
        assert engine.decide("svc-0", T0 + timedelta(minutes=t)) is None
    # Overloaded again since minute 3: at minute 6 the 180 s are up.
    engine.observe(_sample(6, **hot))
    decision = engine.decide("svc-0", T0 + timedelta(minutes=6))
    assert decision is not None and decision.decision_type == "scale_up"


@pytest.mark.parametrize(("cpu", "forced"), [(82.0, True), (75.0, False)])
def test_mild_sustained_overload_counts_from_80_percent_cpu(cpu: float, forced: bool) -> None:
    # A frugal model can park a service just past its latency target (82 % CPU, 270 ms) for
    # hours; by default that is overload too. At 75 % CPU slow answers are not for more VMs.
    engine = DecisionEngine(DecisionConfig(), FixedQ("no_action", 100.0))
    decision = None
    for t in range(4):
        engine.observe(_sample(t, cpu_usage=cpu, network_latency_ms=270.0, error_rate=0.0))
        decision = engine.decide("svc-0", T0 + timedelta(minutes=t))
    assert (decision is not None and decision.decision_type == "scale_up") is forced
