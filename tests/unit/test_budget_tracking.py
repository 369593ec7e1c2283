"""Budget tracking: each service's realised violations move how loaded it looks, within bounds."""

from __future__ import annotations

import pickle
import random
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from pydantic import ValidationError

from agents.decision import DecisionConfig, DecisionEngine
from agents.simulator.benchmark import deployed_config
from models.dqn.features import FEATURES, FeatureConfig, StateBuilder
from models.dqn.tracking import BudgetTracking
from models.slo import SLOConfig
from schemas import MetricSample

T0 = datetime(2026, 1, 5, tzinfo=UTC)
LOAD = FEATURES.index("request_rate")


def _sample(i: int, latency: float, service: str = "svc") -> MetricSample:
    return MetricSample(resource_id=service, resource_type="service", event_id=f"{service}-{i}",
                        event_time=T0 + timedelta(minutes=i), cpu_usage=60.0,
                        network_latency_ms=latency, error_rate=0.0, request_rate=240.0,
                        active_vms=4)


def _builder(budget: float = 2.0, reference: float | None = 2.0,
             tracking: BudgetTracking | None = None) -> StateBuilder:
    return StateBuilder(FeatureConfig(vm_capacity_rps=100.0, slo_budget_pct=budget,
                                      budget_reference_pct=reference,
                                      budget_tracking=tracking or BudgetTracking()))


def _load(builder: StateBuilder, service: str = "svc") -> float:
    state = builder.state(service)
    assert state is not None
    return float(state[LOAD])


def test_violations_raise_the_load_and_a_quiet_service_comes_back_to_its_plain_load() -> None:
    hot, quiet = _builder(), _builder()
    for i in range(60):
        hot.learn_one(_sample(i, latency=400.0))
        quiet.learn_one(_sample(i, latency=400.0 if i < 5 else 120.0))
    plain = 240.0 / 400.0
    assert _load(hot) > plain * 1.5  # 60 violated minutes: e^(0.05·0.986·60) ≈ 19, capped at 4
    assert hot.windows["svc"].pressure == 4.0
    for i in range(60, 2_000):
        hot.learn_one(_sample(i, latency=120.0))
    assert 1.0 < hot.windows["svc"].pressure < 4.0  # a quiet day: e^(−0.05·0.014·1940) ≈ 0.26
    for i in range(60, 1_000):
        quiet.learn_one(_sample(i, latency=120.0))
    assert quiet.windows["svc"].pressure == 1.0  # the default floor: it never looks lighter
    assert _load(quiet) == pytest.approx(plain)


def test_below_one_the_tracker_also_spends_an_unused_budget() -> None:
    builder = _builder(tracking=BudgetTracking(min_factor=0.5))
    for i in range(60):
        builder.learn_one(_sample(i, latency=120.0))
    assert builder.windows["svc"].pressure == pytest.approx(np.exp(-0.05 * 0.014 * 60))


def test_at_the_aimed_share_the_multiplier_has_no_drift() -> None:
    steps = BudgetTracking().steps(5.0)
    assert steps is not None
    aim = 0.05 * 0.7
    assert aim * np.log(steps.up) + (1 - aim) * np.log(steps.down) == pytest.approx(0, abs=1e-12)


def test_in_closed_loop_the_realised_share_settles_at_the_aim() -> None:
    """A world where more headroom (a higher multiplier) means fewer violations: the tracker
    finds the multiplier at which the service violates on the aimed share of ticks."""
    builder, rng = _builder(budget=5.0), random.Random(3)
    aim, violated = 0.05 * 0.7, []
    for i in range(20_000):
        pressure = builder.windows["svc"].pressure if "svc" in builder.windows else 1.0
        hit = rng.random() < 0.2 / pressure**2  # 20 % of ticks at the untracked operating point
        builder.learn_one(_sample(i, latency=400.0 if hit else 120.0))
        violated.append(hit)
    late = violated[5_000:]
    assert 0.7 * aim < sum(late) / len(late) < 1.3 * aim
    assert 1.6 < builder.windows["svc"].pressure < 3.6  # √(0.2 / aim) ≈ 2.4


def test_services_are_tracked_apart_and_errors_count_as_violations() -> None:
    builder = _builder(tracking=BudgetTracking(min_factor=0.5))
    for i in range(30):
        builder.learn_one(_sample(i, latency=120.0, service="calm"))
        builder.learn_one(_sample(i, latency=120.0, service="failing").model_copy(
            update={"error_rate": 0.05}))
    assert builder.windows["failing"].pressure > 1.0 > builder.windows["calm"].pressure


def test_missing_latency_is_not_a_violation() -> None:
    builder = _builder(tracking=BudgetTracking(min_factor=0.5))
    builder.learn_one(_sample(0, latency=120.0).model_copy(update={"network_latency_ms": None}))
    assert builder.windows["svc"].pressure < 1.0


@pytest.mark.parametrize("builder", [_builder(tracking=BudgetTracking(rate=0.0)),
                                     _builder(reference=None)],
                         ids=["rate 0", "model trained before budgets"])
def test_tracking_off_leaves_the_state_alone(builder: StateBuilder) -> None:
    for i in range(30):
        builder.learn_one(_sample(i, latency=400.0))
    assert builder.windows["svc"].pressure == 1.0
    assert _load(builder) == pytest.approx(240.0 / 400.0)


def test_a_snapshot_from_before_tracking_restores_with_a_neutral_multiplier() -> None:
    builder = _builder()
    builder.learn_one(_sample(0, latency=400.0))
    window = builder.windows["svc"]
    old = pickle.loads(pickle.dumps(window))
    del old.__dict__["pressure"]  # as pickled by the version before tracking
    restored = pickle.loads(pickle.dumps(old))
    assert restored.pressure == 1.0
    assert pickle.loads(pickle.dumps(window)).pressure == window.pressure > 1.0


def test_the_slo_the_user_states_is_what_samples_are_judged_by() -> None:
    tracking = BudgetTracking(min_factor=0.5).judged_by(SLOConfig(latency_ms=500.0,
                                                                  error_rate=0.1))
    builder = _builder(tracking=tracking)
    builder.learn_one(_sample(0, latency=400.0))  # over the default 250 ms, under 500 ms
    assert builder.windows["svc"].pressure < 1.0


def test_the_deployment_tracks_the_training_does_not_and_bad_bounds_are_refused() -> None:
    trained = FeatureConfig(budget_tracking=BudgetTracking(rate=0.0))
    deployed = deployed_config({"features": trained.model_dump()})
    assert deployed.features.budget_tracking == BudgetTracking()
    kept = deployed_config({"features": trained.model_dump()},
                           tracking=trained.budget_tracking)
    assert kept.features.budget_tracking.rate == 0.0
    with pytest.raises(ValidationError):
        BudgetTracking(max_factor=0.8)  # the bounds must hold 1, the neutral multiplier


class PrefersScaleUp:
    """A fixed model: scale_up is always the best action."""

    version = "fixed"

    def q_values(self, state: np.ndarray) -> np.ndarray:
        return np.array([0.0, 1.0, -1.0, -1.0, -1.0, -1.0, -1.0, -1.0])


def _surge_step(tracking: BudgetTracking, latency: float) -> tuple[int, str]:
    """The scale_up step for a surge to 4× the usual demand after 20 minutes at `latency`."""
    features = FeatureConfig(vm_capacity_rps=100.0, slo_budget_pct=2.0, budget_reference_pct=2.0,
                             budget_tracking=tracking)
    engine = DecisionEngine(DecisionConfig(features=features, min_confidence=0.0),
                            PrefersScaleUp())
    for i in range(20):
        engine.observe(_sample(i, latency).model_copy(update={"request_rate": 100.0,
                                                              "active_vms": 2}))
    engine.observe(_sample(20, latency).model_copy(update={"request_rate": 400.0,
                                                           "active_vms": 2}))
    decision = engine.decide("svc", T0 + timedelta(minutes=20))
    assert decision is not None and decision.decision_type == "scale_up"
    return int(decision.params["delta"]), decision.reasoning


def test_a_service_burning_its_budget_sizes_a_scale_up_for_the_surge() -> None:
    burning, why = _surge_step(BudgetTracking(), latency=400.0)
    assert burning >= 9  # 400 req/s × the multiplier (> 1) at 75 % of 100 req/s per VM, from 2
    assert "Sized for the latest demand" in why
    quiet, why = _surge_step(BudgetTracking(), latency=120.0)
    assert quiet == 1 and "Sized for" not in why  # not burning: the window's median
    assert _surge_step(BudgetTracking(rate=0.0), latency=400.0)[0] == 1  # tracking off


def test_a_rollback_to_a_model_without_a_budget_makes_every_service_neutral_again() -> None:
    builder = _builder()
    for i in range(30):
        builder.learn_one(_sample(i, latency=400.0))
    assert builder.windows["svc"].pressure > 1.0
    builder.set_budget_reference(None)
    assert builder.windows["svc"].pressure == 1.0
    assert builder.sizing_load("svc", 0.6) == 0.6
    assert _load(builder) == pytest.approx(240.0 / 400.0)


def test_a_tracked_window_restored_into_an_engine_without_tracking_is_not_pressed() -> None:
    tracked = _builder()
    for i in range(30):
        tracked.learn_one(_sample(i, latency=400.0))
    plain = _builder(reference=None)
    plain.windows["svc"] = pickle.loads(pickle.dumps(tracked.windows["svc"]))
    assert _load(plain) == pytest.approx(240.0 / 400.0)
    assert plain.sizing_load("svc", 0.6) == 0.6


class PrefersScaleDown:
    """A fixed model: scale_down first, then migrate_vm."""

    version = "fixed"

    def q_values(self, state: np.ndarray) -> np.ndarray:
        return np.array([0.0, -1.0, 1.0, 0.5, -1.0, -1.0, -1.0, -1.0])


def _after(hot: int, calm: int, tracking: BudgetTracking) -> tuple[float, str, str]:
    """The multiplier, the action and the reasoning after `hot` minutes over the SLO's latency
    (280 ms) and then `calm` minutes well within it (150 ms: the safety guard's own latency rule,
    > 200 ms, no longer masks scale_down)."""
    features = FeatureConfig(vm_capacity_rps=100.0, slo_budget_pct=2.0, budget_reference_pct=2.0,
                             budget_tracking=tracking)
    engine = DecisionEngine(DecisionConfig(features=features, min_confidence=0.0),
                            PrefersScaleDown())
    for i in range(hot + calm):  # 6 VMs and no errors: the sample alone allows a scale-down
        latency = 280.0 if i < hot else 150.0
        engine.observe(_sample(i, latency).model_copy(update={"active_vms": 6}))
    decision = engine.decide("svc", T0 + timedelta(minutes=hot + calm))
    assert decision is not None
    return engine.states.windows["svc"].pressure, decision.decision_type, decision.reasoning


def test_a_service_that_burnt_its_budget_holds_scale_downs_until_it_recovers() -> None:
    pressure, action, _ = _after(0, 30, BudgetTracking())
    assert pressure == 1.0 and action == "scale_down"
    pressure, action, why = _after(30, 10, BudgetTracking())
    assert pressure >= 3.0 and action == "migrate_vm"  # the next best one
    assert "scale_down (error budget burning (multiplier" in why
    pressure, action, _ = _after(30, 10, BudgetTracking(hold_scale_down_at=5.0))
    assert pressure >= 3.0 and action == "scale_down"  # above the cap of 4: never held
    pressure, action, _ = _after(30, 10, BudgetTracking(rate=0.0))
    assert action == "scale_down"  # tracking off
    pressure, action, _ = _after(30, 2_000, BudgetTracking())
    assert pressure < 3.0 and action == "scale_down"  # recovered: a quiet day brings it down
