"""The forecaster: seasonal series, band, cold start, and the harness against baselines."""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime, timedelta

import numpy as np

from models.forecast import ForecastConfig, Forecaster
from models.forecast_eval import evaluate_series, summarise
from models.nab.corpus import NabFile
from models.nab.scorer import label_file

START = datetime(2026, 1, 1, tzinfo=UTC)


def _daily(n: int, noise: float, seed: int = 3) -> list[float]:
    rng = random.Random(seed)
    return [50 + 20 * math.sin(2 * math.pi * i / 288) + rng.gauss(0, noise) for i in range(n)]


def _file(values: list[float]) -> NabFile:
    times = [START + timedelta(minutes=5 * i) for i in range(len(values))]
    stamps = [t.strftime("%Y-%m-%d %H:%M:%S") for t in times]
    return NabFile("real/x.csv", stamps, np.array(values), label_file("real/x.csv", stamps, []))


def test_cold_start_is_none_then_a_band_around_the_value() -> None:
    model = Forecaster()
    assert model.predict_one() is None
    for i, v in enumerate(_daily(600, 1.0)):
        model.learn_one(v, START + timedelta(minutes=5 * i))
    forecast = model.predict_one()
    assert forecast is not None
    assert forecast.lower < forecast.value < forecast.upper
    assert abs(sum(forecast.weights.values()) - 1) < 1e-9


def test_band_covers_most_outcomes() -> None:
    model = Forecaster(ForecastConfig(horizon=1))
    values = _daily(3000, 2.0)
    inside = total = 0
    for i, v in enumerate(values):
        forecast = model.predict_one()
        if forecast is not None and i > 600:
            total += 1
            inside += forecast.lower <= v <= forecast.upper
        model.learn_one(v, START + timedelta(minutes=5 * i))
    assert 0.8 < inside / total < 0.97  # a 5–95 % band


def test_seasonal_experts_win_at_long_horizon_on_a_daily_series() -> None:
    result = evaluate_series(_file(_daily(288 * 6, 0.5)), horizon=36)
    assert result.mae["forecaster"] < result.mae["last_value"] / 5
    assert result.mae["forecaster"] < result.mae["seasonal_naive"] * 2


def test_beats_seasonal_naive_on_a_random_walk() -> None:
    rng = random.Random(5)
    walk, level = [], 50.0
    for _ in range(288 * 4):
        level += rng.gauss(0, 1)
        walk.append(level)
    result = evaluate_series(_file(walk), horizon=1)
    assert result.beats_seasonal_naive
    assert summarise([result])["beats_seasonal_naive"] == 1


def test_non_finite_values_are_ignored() -> None:
    model = Forecaster()
    for i, v in enumerate([1.0, 2.0, float("nan"), 3.0, 4.0]):
        model.learn_one(v, START + timedelta(minutes=5 * i))
    forecast = model.predict_one()
    assert forecast is not None and math.isfinite(forecast.value)
    assert model.n_seen == 4
