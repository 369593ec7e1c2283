"""Forecast harness: MAE/MAPE of the forecaster against seasonal-naive and last-value baselines."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np

from models.forecast import ForecastConfig, Forecaster
from models.nab.corpus import NabFile

__all__ = ["METHODS", "SeriesResult", "evaluate_series", "is_real_series", "summarise"]

METHODS = ("forecaster", "seasonal_naive", "last_value")
"""Methods compared, in table order."""

_MAPE_FLOOR = 1e-9


def is_real_series(name: str) -> bool:
    """Real NAB series: AWS CloudWatch CPU/network/requests, tweets, ad exchange."""
    return name.startswith("real")


@dataclass(frozen=True)
class SeriesResult:
    """Errors of every method on one series, over the same rows."""

    name: str
    rows: int
    mae: dict[str, float]
    mape: dict[str, float]

    @property
    def beats_seasonal_naive(self) -> bool:
        return self.mae["forecaster"] < self.mae["seasonal_naive"]


def _errors(actual: list[float], guesses: dict[str, list[float]]) -> tuple[dict, dict]:
    y = np.asarray(actual)
    mae, mape = {}, {}
    nonzero = np.abs(y) > _MAPE_FLOOR  # MAPE is undefined where the actual value is 0
    for name, g in guesses.items():
        err = np.abs(y - np.asarray(g))
        mae[name] = float(err.mean()) if err.size else float("nan")
        mape[name] = float(100 * (err[nonzero] / np.abs(y[nonzero])).mean()) if nonzero.any() \
            else float("nan")
    return mae, mape


def evaluate_series(file: NabFile, horizon: int = 1) -> SeriesResult:
    """Prequential run: every method forecasts row i from rows < i − horizon + 1 only."""
    model = Forecaster(ForecastConfig(horizon=horizon))
    times = [datetime.fromisoformat(t) for t in file.timestamps]
    by_time = {t: float(v) for t, v in zip(times, file.values, strict=True)}
    pending: deque[float | None] = deque()
    actual: list[float] = []
    guesses: dict[str, list[float]] = {m: [] for m in METHODS}
    for i, (t, y) in enumerate(zip(times, file.values, strict=True)):
        y = float(y)
        ours = pending.popleft() if len(pending) == horizon else None
        naive = by_time.get(t - timedelta(days=1))  # the past only: yesterday, same time
        if ours is not None and naive is not None and i >= horizon:
            actual.append(y)
            guesses["forecaster"].append(ours)
            guesses["seasonal_naive"].append(naive)
            guesses["last_value"].append(float(file.values[i - horizon]))
        model.learn_one(y, t)
        forecast = model.predict_one()
        pending.append(forecast.value if forecast else None)
    mae, mape = _errors(actual, guesses)
    return SeriesResult(file.name, len(actual), mae, mape)


def summarise(results: list[SeriesResult]) -> dict[str, object]:
    """Totals: series where the forecaster beats seasonal-naive, and mean relative MAE."""
    scored = [r for r in results if r.rows]
    wins = sum(r.beats_seasonal_naive for r in scored)
    rel = [r.mae["forecaster"] / r.mae["seasonal_naive"] for r in scored if r.mae["seasonal_naive"]]
    return {
        "series": len(scored),
        "beats_seasonal_naive": wins,
        "beats_last_value": sum(r.mae["forecaster"] < r.mae["last_value"] for r in scored),
        "mean_mae_ratio_vs_seasonal_naive": float(np.mean(rel)) if rel else None,
    }
