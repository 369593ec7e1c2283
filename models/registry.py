"""The registered online models, each with the adapters the contract checks drive it through."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from models.anomaly import AnomalyDetector
from models.forecast import ForecastConfig, Forecaster
from models.recommend import Recommender

__all__ = ["REGISTRY", "ModelSpec", "sample_stream"]


@dataclass(frozen=True)
class ModelSpec:
    """How to build, feed and query one model, and what its neutral cold-start output is."""

    name: str
    make: Callable[[int], Any]
    """Build a fresh model from a seed."""
    learn: Callable[[Any, dict[str, Any]], None]
    predict: Callable[[Any, dict[str, Any]], Any]
    is_neutral: Callable[[Any], bool]
    """True for the cold-start output (None, 0.0, [])."""
    restore: Callable[[bytes], Any]


def sample_stream(seed: int, n: int = 400) -> list[dict[str, Any]]:
    """A deterministic daily-seasonal metric stream with a spike, as plain dicts."""
    rng = random.Random(seed)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    rows = []
    for i in range(n):
        cpu = 40 + 20 * ((i % 288) / 288) + rng.gauss(0, 2) + (45 if i == n - 50 else 0)
        rows.append({
            "t": start + timedelta(minutes=5 * i),
            "cpu_usage": min(100.0, max(0.0, cpu)),
            "memory_usage": 50 + rng.gauss(0, 1),
            "active_vms": 3,
        })
    return rows


def _metrics(x: dict[str, Any]) -> dict[str, float]:
    return {k: v for k, v in x.items() if k in ("cpu_usage", "memory_usage")}


REGISTRY: tuple[ModelSpec, ...] = (
    ModelSpec(
        "forecaster",
        lambda seed: Forecaster(ForecastConfig(horizon=3), seed),
        lambda m, x: m.learn_one(x["cpu_usage"], x["t"]),
        lambda m, x: m.predict_one(),
        lambda out: out is None,
        Forecaster.restore,
    ),
    ModelSpec(
        "anomaly",
        lambda seed: AnomalyDetector(seed=seed),
        lambda m, x: m.learn_one(_metrics(x)),
        lambda m, x: m.score_one(_metrics(x)),
        lambda out: out == 0.0,
        AnomalyDetector.restore,
    ),
    ModelSpec(
        "recommender",
        lambda seed: Recommender(seed=seed),
        lambda m, x: m.learn_one(x),
        lambda m, x: m.predict_one(),
        lambda out: out == [],
        Recommender.restore,
    ),
)
"""Every model the contract checks run over."""
