"""The anomaly detector: calibrated scores, streaming behaviour and NAB quality on a subset."""

from __future__ import annotations

import random
from pathlib import Path

from models.anomaly import AnomalyConfig, AnomalyDetector, tail_score
from models.nab.corpus import evaluate_corpus, load_corpus, profiles_of, run_detector
from tests.nab_data import FULL_NAB, SYNTHETIC, needs_full_nab


def _stream(n: int, spike_at: int) -> list[float]:
    rng = random.Random(1)
    return [50 + rng.gauss(0, 1) + (40 if i == spike_at else 0) for i in range(n)]


def test_tail_score_is_monotone_and_bounded() -> None:
    values = [tail_score(z) for z in (-1, 0, 1, 3, 4.26, 8, 20, 60)]
    assert values == sorted(values)
    assert values[0] == 0.0 and values[-1] < 1.0
    assert abs(tail_score(4.417) - 0.5) < 0.01  # one-sided P = 5e-6 maps to 0.5


def test_spike_is_the_top_score_and_above_threshold() -> None:
    detector = AnomalyDetector(AnomalyConfig(cooldown=0))
    scores = [detector.score_learn({"cpu": v}) for v in _stream(1500, 1200)]
    assert scores[1200] >= detector.threshold
    assert scores[1200] == max(scores)
    assert sum(s >= detector.threshold for s in scores[100:1200]) <= 5  # rare new extremes
    assert all(0.0 <= s < 1.0 for s in scores)
    assert scores[:30] == [0.0] * 30  # warm-up: neutral


def test_cooldown_damps_repeated_alerts() -> None:
    values = _stream(1500, 1200)
    values[1205] += 40
    free = AnomalyDetector(AnomalyConfig(cooldown=0))
    damped = AnomalyDetector(AnomalyConfig(cooldown=50))
    free_scores = [free.score_learn({"cpu": v}) for v in values]
    damped_scores = [damped.score_learn({"cpu": v}) for v in values]
    assert free_scores[1205] >= free.threshold > damped_scores[1205]


def test_missing_metrics_are_skipped_not_zero() -> None:
    detector = AnomalyDetector()
    for v in _stream(600, -1):
        detector.learn_one({"cpu": v, "mem": 30.0})
    assert detector.score_one({"cpu": 50.0}) < detector.threshold  # mem absent: no alarm


def test_score_one_does_not_learn() -> None:
    detector = AnomalyDetector()
    for v in _stream(300, -1):
        detector.learn_one({"cpu": v})
    blob = detector.snapshot()
    detector.score_one({"cpu": 500.0})
    assert detector.snapshot() == blob


def _normalised(root: Path, only: str | None = None) -> float:
    files = load_corpus(root, only=only)
    assert files, f"no NAB files under {root}"
    scored = [(f.labelled, run_detector(f, _Adapter)) for f in files]
    return evaluate_corpus(scored, profiles_of(root)).profiles["standard"].normalised


def test_beats_null_detector_on_the_generated_sample() -> None:
    assert _normalised(SYNTHETIC) > 40  # the same bar as on NAB's AWS files below


@needs_full_nab
def test_beats_null_detector_on_nab_aws_files() -> None:
    assert FULL_NAB is not None
    assert _normalised(FULL_NAB, only="ec2_cpu_utilization") > 40


class _Adapter:
    def __init__(self) -> None:
        self.model = AnomalyDetector()

    def score_learn(self, t, value: float) -> float:
        return self.model.score_learn({"value": value})
