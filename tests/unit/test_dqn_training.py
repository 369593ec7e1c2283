"""DQN training on the simulator: n-step folding, demand-level features, sizing, guided
exploration and validation-based checkpoint choice."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from agents.decision import DecisionConfig, DecisionEngine
from agents.simulator.training import NStep, TrainConfig, _Epsilon, train
from models.dqn.config import DQNConfig
from models.dqn.explain import ImpactModel, scale_delta
from models.dqn.features import FeatureConfig, StateBuilder
from models.dqn.safety import ACTION_INDEX
from schemas import MetricSample

T0 = datetime(2026, 1, 5, tzinfo=UTC)


def _sample(t: int, rate: float, vms: int = 4, cpu: float = 50.0) -> MetricSample:
    return MetricSample(resource_id="svc-0", event_time=T0 + timedelta(minutes=t),
                        request_rate=rate, cpu_usage=cpu, active_vms=vms, error_rate=0.0,
                        network_latency_ms=100.0, cost_per_hour=0.4)


def _t(i: int, r: float) -> tuple[np.ndarray, int, float, np.ndarray, bool, np.ndarray]:
    return (np.full(9, i, np.float32), i % 8, r, np.full(9, i + 1, np.float32), False,
            np.ones(8, dtype=bool))


def test_n_step_folds_discounted_rewards_and_skips_to_the_nth_state() -> None:
    folder = NStep(3, 0.5)
    assert folder.push(_t(0, 1.0)) == [] and folder.push(_t(1, 2.0)) == []
    [(s, a, r, s2, done, _)] = folder.push(_t(2, 4.0))
    assert s[0] == 0 and a == 0 and r == pytest.approx(1.0 + 0.5 * 2.0 + 0.25 * 4.0)
    assert s2[0] == 3 and not done
    [(s, _, r, s2, _, _)] = folder.push(_t(3, 0.0))
    assert s[0] == 1 and r == pytest.approx(2.0 + 0.5 * 4.0) and s2[0] == 4
    folder.flush()
    assert folder.push(_t(9, 1.0)) == []  # a new episode never folds into the old one
    assert NStep(1, 0.9).push(_t(0, 5.0))[0][2] == 5.0


def test_load_feature_is_a_quantile_of_the_window_not_the_last_sample() -> None:
    builder = StateBuilder(FeatureConfig(vm_capacity_rps=100.0, load_quantile=0.75, window=5))
    for t, rate in enumerate([100.0, 400.0, 200.0, 300.0, 40.0]):  # noisy demand, last is low
        builder.learn_one(_sample(t, rate))
    state = builder.state("svc-0")
    assert state is not None
    assert state[3] == pytest.approx(300.0 / 400.0)  # 75th percentile over 4 VMs × 100 rps
    assert state[7] < 0  # the short mean (180) is under the window mean (208)


def test_trend_sees_a_rising_level() -> None:
    builder = StateBuilder(FeatureConfig(vm_capacity_rps=100.0, window=6))
    for t, rate in enumerate([100.0, 100.0, 100.0, 200.0, 200.0, 200.0]):
        builder.learn_one(_sample(t, rate))
    state = builder.state("svc-0")
    assert state is not None and state[7] == pytest.approx(200.0 / 150.0 - 1.0)


def test_one_scale_step_closes_the_gap_to_the_target() -> None:
    model = ImpactModel(target_utilisation=0.75, trend_weight=0.0)
    sample = _sample(0, 600.0)  # 4 VMs
    # level 1.5 × 4 VMs of demand → 6 VMs of load → 8 VMs at 75 %
    assert scale_delta("scale_up", sample, 1.5, 0.0, model, (1, 20)) == 4
    assert scale_delta("scale_down", sample, 0.375, 0.0, model, (1, 20)) == 2
    assert scale_delta("scale_up", sample, 10.0, 0.0, model, (1, 20)) == 16  # bounded


def _engine_with_level(rate: float) -> DecisionEngine:
    engine = DecisionEngine(DecisionConfig(features=FeatureConfig(vm_capacity_rps=100.0)))
    engine.observe(_sample(0, rate))
    engine.states.state("svc-0")
    return engine


def test_guided_exploration_scales_toward_the_target() -> None:
    class _Stub:
        epsilon, env_steps = 1.0, 0
        rng = np.random.default_rng(0)

    allowed = np.ones(8, dtype=bool)
    up = _Epsilon(_Stub(), _engine_with_level(800.0), 1.0, no_action_share=0.0)  # type: ignore[arg-type]
    assert up.pick(allowed) == ACTION_INDEX["scale_up"]
    down = _Epsilon(_Stub(), _engine_with_level(50.0), 1.0, no_action_share=0.0)  # type: ignore[arg-type]
    assert down.pick(allowed) == ACTION_INDEX["scale_down"]
    allowed[ACTION_INDEX["scale_down"]] = False
    assert down.pick(allowed) == 0  # the guide never proposes a masked action


def test_training_validates_and_keeps_the_best_weights() -> None:
    cfg = TrainConfig(episodes=3, episode_ticks=40, validate_every=1, validation_ticks=30,
                      dqn=DQNConfig(layers=(9, 16, 8, 8), warmup=16, batch_size=16,
                                    eps_decay_steps=60, n_step=3, gamma=0.9))
    result = train(cfg)
    assert [v.episode for v in result.validation] == [0, 1, 2]
    assert all(v.beats_hpa is None for v in result.validation)  # no CSV trace: by reward
    best = max(result.validation, key=lambda v: v.reward)
    assert result.best_episode == best.episode
    assert result.env_steps == 3 * 40 and len(result.episode_rewards) == 3
    again = train(cfg)  # seeded: the same run twice gives the same weights
    for key in result.weights:
        np.testing.assert_array_equal(result.weights[key], again.weights[key])


def _spiky_csv(path, rows: int = 400) -> str:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(3)
    level = 50 + 40 * np.sin(np.arange(rows) / 30.0) + rng.normal(0, 5, rows)
    lines = ["timestamp,value"] + [f"2026-01-01 00:{i // 60:02d}:{i % 60:02d},{v:.2f}"
                                   for i, v in enumerate(level)]
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def test_hpa_curve_selection_scores_every_csv_trace(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from agents.simulator import selection

    traces = [_spiky_csv(tmp_path / "a.csv"), _spiky_csv(tmp_path / "b.csv", 300)]
    seen: list[str] = []
    score = selection.CurveJudge.score

    def spy(self, weights):  # type: ignore[no-untyped-def]
        seen.extend(w.trace for w in self.worlds)
        return score(self, weights)

    monkeypatch.setattr(selection.CurveJudge, "score", spy)
    cfg = TrainConfig(episodes=2, episode_ticks=40, validate_every=1, validation_ticks=60,
                      traces=["synthetic", *traces],
                      dqn=DQNConfig(layers=(9, 16, 8, 8), warmup=16, batch_size=16,
                                    eps_decay_steps=60, n_step=3, gamma=0.9))
    result = train(cfg)
    assert seen == traces * 2  # both CSVs judged at each validation, synthetic never
    assert all(v.beats_hpa is not None and 0 <= v.beats_hpa <= 2 for v in result.validation)
    best = max(result.validation, key=lambda v: (v.beats_hpa, v.reward))
    assert result.best_episode == best.episode


def test_validation_ranks_hpa_wins_before_reward() -> None:
    from agents.simulator.training import ValidationScore

    frugal = ValidationScore(episode=1, reward=-900.0, beats_hpa=3)
    rich = ValidationScore(episode=2, reward=-500.0, beats_hpa=2)
    tie = ValidationScore(episode=3, reward=-800.0, beats_hpa=3)
    assert max([frugal, rich, tie], key=ValidationScore.rank) is tie
