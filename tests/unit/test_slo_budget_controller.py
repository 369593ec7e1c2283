"""The SLO budget reaches the state and changes what the engine does; training prices it."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

from agents.decision import DecisionConfig, DecisionEngine
from agents.simulator.budget import budget_report
from agents.simulator.constrained import LagrangeConfig, Multiplier, SplitReplay
from agents.simulator.evaluate import EpisodeStats
from models.dqn.checkpoints import CheckpointStore
from models.dqn.features import FEATURES, FeatureConfig
from models.dqn.policy import QPolicy, init_weights
from models.dqn.tracking import BudgetTracking
from schemas import MetricSample
from streams.decision import policy_for

T0 = datetime(2026, 1, 5, tzinfo=UTC)
LOAD = FEATURES.index("request_rate")


class PrefersScaleUp:
    """A fixed model: scale_up is always the best action."""

    version = "fixed"

    def q_values(self, state: np.ndarray) -> np.ndarray:
        return np.array([0.0, 1.0, -1.0, -1.0, -1.0, -1.0, -1.0, -1.0])


def _engine(budget: float, reference: float | None = 2.0) -> DecisionEngine:
    # the budget alone, without the tracker (tests/unit/test_budget_tracking.py) moving it
    features = FeatureConfig(vm_capacity_rps=100.0, slo_budget_pct=budget,
                             budget_reference_pct=reference,
                             budget_tracking=BudgetTracking(rate=0.0))
    return DecisionEngine(DecisionConfig(features=features, min_confidence=0.0),
                          PrefersScaleUp())


def _feed(engine: DecisionEngine) -> None:
    """The same situation every time: 4 VMs serving 320 req/s (80 % of capacity)."""
    for i in range(10):
        engine.observe(MetricSample(
            resource_id="svc", resource_type="service", event_id=f"s-{i}",
            event_time=T0 + timedelta(minutes=i), cpu_usage=80.0, memory_usage=40.0,
            network_latency_ms=190.0, error_rate=0.0, request_rate=320.0, active_vms=4,
            cost_per_hour=0.4))


def test_a_tighter_budget_makes_the_same_demand_look_closer_to_capacity() -> None:
    states = {}
    for budget in (1.0, 2.0, 5.0):
        engine = _engine(budget)
        _feed(engine)
        states[budget] = engine.states.state("svc", T0 + timedelta(minutes=9))
    assert states[2.0][LOAD] == np.float32(0.8)  # at the model's own budget: the plain load
    assert states[1.0][LOAD] > states[2.0][LOAD] > states[5.0][LOAD]
    others = [i for i in range(len(FEATURES)) if i != LOAD]
    assert np.array_equal(states[1.0][others], states[5.0][others])


def test_changing_the_budget_changes_what_the_controller_does() -> None:
    deltas = {}
    for budget in (0.5, 5.0):
        engine = _engine(budget)
        _feed(engine)
        decision = engine.decide("svc", T0 + timedelta(minutes=9))
        assert decision is not None and decision.decision_type == "scale_up"
        deltas[budget] = decision.params["delta"]
    assert (deltas[0.5], deltas[5.0]) == (2, 1)  # more headroom for the tighter budget


def test_a_model_without_a_reference_budget_is_not_moved_by_it() -> None:
    loads = set()
    for budget in (1.0, 5.0):
        engine = _engine(budget, reference=None)
        _feed(engine)
        loads.add(float(engine.states.state("svc", T0 + timedelta(minutes=9))[LOAD]))
    assert loads == {float(np.float32(0.8))}


def _checkpoint(root: Path, reference: float | None) -> str:
    store = CheckpointStore(root)
    features = {} if reference is None else {"budget_reference_pct": reference}
    meta = store.save(init_weights(0), {"created_at": "2026-01-01T00:00:00Z", "episodes": 1,
                                        "env_steps": 1, "mean_reward": 0.0, "traces": [],
                                        "config": {"decision": {"features": features}}})
    return meta.version


def test_a_live_engine_reads_the_budget_its_model_was_trained_for(tmp_path: Path) -> None:
    budgeted, older = _checkpoint(tmp_path, 2.0), _checkpoint(tmp_path, None)
    store = CheckpointStore(tmp_path)
    engine = DecisionEngine(DecisionConfig(features=FeatureConfig(slo_budget_pct=1.0)))
    engine.load_policy(policy_for(budgeted, store))
    assert engine.states.config.budget_reference_pct == 2.0
    assert engine.states.config.budget_factor() > 1.0
    engine.load_policy(policy_for(older, store))  # rollback to a model from before budgets
    assert engine.states.config.budget_reference_pct is None
    assert engine.states.config.budget_factor() == 1.0
    engine.load_policy(QPolicy(init_weights(1), "plain"))  # not from a checkpoint: unchanged
    assert engine.states.config.budget_reference_pct is None


def test_the_multiplier_rises_over_the_budget_and_falls_under_it() -> None:
    multiplier = Multiplier(LagrangeConfig(budget_pct=2.0, initial=1.0, step=0.5))
    up = multiplier.update([0.0, 1.0, 9.0, 9.0, 9.0])  # the 80th percentile misses the budget
    assert up > 1.0
    assert multiplier.update([0.0, 0.0, 0.0, 0.5, 1.0]) < up
    for _ in range(100):
        multiplier.update([50.0])
    assert multiplier.value == LagrangeConfig().high


def test_the_split_replay_prices_violations_at_the_current_multiplier() -> None:
    multiplier = Multiplier(LagrangeConfig(initial=2.0))
    replay = SplitReplay(10, 9, 8, 0, multiplier)
    replay.push(np.zeros(9), 0, np.array([-0.3, 1.0]), np.zeros(9))
    assert replay.sample(1)[2][0] == np.float32(-2.3)
    multiplier.value = 5.0
    assert replay.sample(1)[2][0] == np.float32(-5.3)


def _row(name: str, violation: float, vm_hours: float) -> EpisodeStats:
    return EpisodeStats(controller=name, ticks=100, slo_violation_pct=violation,
                        vm_hours=vm_hours, cost=vm_hours / 10, total_reward=0.0, actions=0,
                        mean_latency_ms=100.0)


def test_the_report_judges_each_budget_on_the_dqn_run_for_it() -> None:
    runs = {"a": [_row("hpa-50", 0.5, 60), _row("dqn@1", 0.8, 50), _row("dqn@5", 4.0, 30)]}
    report = budget_report(runs, [1.0, 5.0])
    for entry in report.traces:
        names = [v.controller for v in entry.controllers]
        assert names == ["hpa-50", "dqn"]
        dqn = entry.controllers[1]
        assert (dqn.vm_hours, dqn.meets) == ((50, True) if entry.budget_pct == 1.0 else (30, True))
    assert json.loads(report.model_dump_json())["chosen"]["1"]["hpa"] == "hpa-50"


def _csv(path: Path, rows: int = 300) -> str:
    rng = np.random.default_rng(3)
    level = 50 + 40 * np.sin(np.arange(rows) / 30.0) + rng.normal(0, 5, rows)
    lines = ["timestamp,value"] + [f"2026-01-01 {i // 60:02d}:{i % 60:02d}:00,{v:.2f}"
                                   for i, v in enumerate(level)]
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def test_budget_training_adapts_the_multiplier_and_keeps_the_cheapest_that_meets_it(
        tmp_path: Path) -> None:
    from agents.simulator.training import TrainConfig, ValidationScore, train
    from models.dqn.config import DQNConfig

    traces = [_csv(tmp_path / "a.csv"), _csv(tmp_path / "b.csv", 250)]
    cfg = TrainConfig(episodes=3, episode_ticks=40, validate_every=1, validation_ticks=60,
                      traces=["synthetic", *traces], select_by="budget",
                      lagrange=LagrangeConfig(budget_pct=2.0),
                      dqn=DQNConfig(layers=(9, 16, 8, 8), warmup=16, batch_size=16,
                                    eps_decay_steps=60, n_step=3, gamma=0.9))
    result = train(cfg)
    assert all(len(v.violation_pct) == 2 and v.met is not None and v.multiplier is not None
               for v in result.validation)
    best = max(result.validation, key=ValidationScore.rank)
    assert result.best_episode == best.episode
    # the engine config saved with the model: its budget, and λ as the violation penalty
    assert cfg.decision.features.budget_reference_pct == 2.0
    assert cfg.decision.reward.violation_penalty == result.validation[-1].multiplier
    cheap = ValidationScore(episode=1, reward=0, met=2, vm_hours=10.0)
    dear = ValidationScore(episode=2, reward=0, met=2, vm_hours=20.0)
    missing = ValidationScore(episode=3, reward=0, met=1, vm_hours=5.0)
    assert max([dear, missing, cheap], key=ValidationScore.rank) is cheap
