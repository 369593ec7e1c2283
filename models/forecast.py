"""Per-metric h-step forecaster: an online-weighted ensemble of experts with a residual band."""

from __future__ import annotations

import copy
import math
import pickle  # noqa: S403 - snapshots are our own model state, written and read by our workers
from collections import deque
from datetime import datetime
from typing import Any, NamedTuple

from pydantic import BaseModel, Field
from river import stats

from models.river_stats import update_quantile

__all__ = ["EXPERTS", "Forecast", "ForecastConfig", "Forecaster"]

EXPERTS = ("last", "fast", "slow", "seasonal_level", "seasonal_naive")
"""The experts the ensemble weighs, in order."""


class ForecastConfig(BaseModel):
    """Settings of the forecaster."""

    horizon: int = Field(default=1, ge=1, le=1000)
    """Steps ahead (sampling intervals) the forecast is for."""
    fast_alpha: float = Field(default=0.5, gt=0, le=1)
    """Fading factor of the fast level."""
    slow_alpha: float = Field(default=0.05, gt=0, le=1)
    """Fading factor of the slow level."""
    season_seconds: int = Field(default=86_400, ge=60)
    """Length of the season (a day): the seasonal experts look this far back."""
    season_buckets: int = Field(default=48, ge=2)
    """Buckets of the seasonal profile (48 = half-hours of a day)."""
    season_alpha: float = Field(default=0.1, gt=0, le=1)
    """Fading factor of each bucket of the seasonal profile."""
    error_alpha: float = Field(default=0.02, gt=0, le=1)
    """Fading factor of each expert's running absolute error (its weight)."""
    sharpness: float = Field(default=2.0, gt=0)
    """Exponent of the inverse-error weights: higher trusts the best expert more."""
    band_quantile: float = Field(default=0.05, gt=0, lt=0.5)
    """Lower quantile of the residuals that sets the band (upper = 1 − this)."""
    band_window: int = Field(default=500, ge=10)
    """Residuals kept for the band."""
    min_samples: int = Field(default=3, ge=1)
    """Samples before the first forecast (cold start returns None)."""


_STEP_ALPHA = 0.1
"""Fading factor of the running sampling interval."""


def _ewm(mean: float | None, x: float, alpha: float) -> float:
    """One update of river's `stats.EWMean` (river 0.26): the first value (mean None) is the
    mean, then alpha·x + (1 − alpha)·mean. Bit-identical to it (tests check) and a fraction of
    the cost of its Python wrapper on the per-sample path. River reads 0.0 before any update."""
    return x if mean is None else alpha * x + (1.0 - alpha) * mean


_Point = tuple[float, float, float, dict[str, float]]
"""A forecast inside the model: value, lower, upper, weights."""


def _ewm_value(stat: stats.EWMean) -> float | None:
    """The float state of a river EWMean (None before its first update)."""
    probe = copy.deepcopy(stat)
    probe.update(1.0)  # the first update sets the mean to x: tells a fresh EWMean apart
    return None if probe.get() == 1.0 and stat.get() == 0.0 else stat.get()


class Forecast(NamedTuple):
    """A forecast h steps ahead with its uncertainty band (immutable; a tuple, as it is made on
    every prediction)."""

    value: float
    lower: float
    upper: float
    horizon: int
    weights: dict[str, float]


class Forecaster:
    """Forecast of one metric h steps ahead (river verbs: learn, then predict; prequential).

    Experts: last value, a fast and a slow EWMA, the fast level moved along a time-of-day profile,
    and the value one season before the target time. Each expert's forecasts are scored when their
    target arrives; weights are inverse running absolute errors, so the ensemble follows the best
    expert of each series. The band is the rolling quantiles of the ensemble's own residuals.
    """

    def __init__(self, config: ForecastConfig | None = None, seed: int = 0) -> None:
        self.config = config or ForecastConfig()
        self.seed = seed  # deterministic by construction; kept for a uniform model signature
        c = self.config
        self._fast: float | None = None  # river EWMean(fast_alpha) as a float: see _ewm
        self._slow: float | None = None  # EWMean(slow_alpha)
        self._profile: dict[int, float] = {}
        self._history: dict[int, float] = {}  # minute → value, for the seasonal-naive expert
        self._pending: deque[tuple[dict[str, float], float | None]] = deque()
        self._errors = {name: 0.0 for name in EXPERTS}
        self._error_n = {name: 0 for name in EXPERTS}
        self._lo = stats.RollingQuantile(c.band_quantile, c.band_window)
        self._hi = stats.RollingQuantile(1 - c.band_quantile, c.band_window)
        self._last: float | None = None
        self._last_t: float | None = None
        self._last_bucket = 0
        """Season bucket of _last_t (derived: kept so it is computed once per sample)."""
        self._forecasted: _Point | None = None
        """The forecast of the current state (derived: learn_one computes it once)."""
        self._step: float | None = None  # EWMean(0.1) of the sampling interval
        self.n_seen = 0

    def _bucket(self, epoch: float) -> int:
        c = self.config
        return int((epoch % c.season_seconds) / c.season_seconds * c.season_buckets)

    def _experts(self) -> dict[str, float]:
        assert self._last is not None
        fast = self._fast or 0.0  # set with _last: `or` only satisfies the type checker
        out = {"last": self._last, "fast": fast, "slow": self._slow or 0.0}
        last_t = self._last_t
        if last_t is None or self.n_seen < 2:
            return out  # no target time yet
        c = self.config
        target = last_t + c.horizon * (self._step or 0.0)
        here = self._profile.get(self._last_bucket)
        if here is not None:
            there = self._profile.get(self._bucket(target))
            if there is not None:
                out["seasonal_level"] = fast + there - here
        naive = self._history.get(round((target - c.season_seconds) / 60))
        if naive is not None:
            out["seasonal_naive"] = naive
        return out

    def _forecast(self, experts: dict[str, float]) -> _Point | None:
        """The ensemble: inverse-error weights of the experts that have been scored (only `last`
        before any is), their weighted sum, and the residual band around it."""
        c = self.config
        if self._last is None or self.n_seen < c.min_samples:
            return None
        errors, counts, power = self._errors, self._error_n, -c.sharpness
        raw = {name: (errors[name] + 1e-9) ** power for name in experts if counts[name]}
        if raw:
            total = sum(raw.values())
            weights = {name: w / total for name, w in raw.items()}
        else:
            weights = {"last": 1.0}
        value = sum([w * experts[name] for name, w in weights.items()])
        band = self._hi  # the band's quantiles are updated together: both or neither
        if band._is_updated:  # river_stats.quantile_value, inline (once per metric and sample)
            lower = value + self._lo._rolling_quantile.get()
            upper = value + band._rolling_quantile.get()
        else:
            lower = upper = value + 0.0
        return value, min(lower, value), max(upper, value), weights

    def predict_one(self) -> Forecast | None:
        """The forecast `horizon` steps after the last learned sample (None at cold start).

        Computed once by `learn_one` (the state it depends on changes only there)."""
        point = self._forecasted
        if point is None:
            return None
        value, lower, upper, weights = point  # a fresh object: callers may edit its weights
        return Forecast(value, lower, upper, self.config.horizon, dict(weights))

    def score_one(self, y: float) -> float | None:
        """Absolute error of the forecast that targeted this sample (None when there was none)."""
        if len(self._pending) < self.config.horizon:
            return None
        _, ensemble = self._pending[0]
        return None if ensemble is None else abs(y - ensemble)

    def learn_one(self, y: float, t: datetime | None = None) -> None:
        """Learn one observation (t: its timestamp, enables the seasonal experts)."""
        y = float(y)
        if not math.isfinite(y):
            return  # a NaN/inf would poison every running statistic; skip it
        self._settle(y)
        self._observe(y, t)
        experts = self._experts()  # _observe has set _last
        point = self._forecasted = self._forecast(experts)
        self._pending.append((experts, point[0] if point else None))

    def _settle(self, y: float) -> None:
        # the forecasts made `horizon` samples ago targeted this sample: score them now
        if len(self._pending) < self.config.horizon:
            return
        experts, ensemble = self._pending.popleft()
        a = self.config.error_alpha
        keep = 1 - a
        errors, counts = self._errors, self._error_n
        for name, guess in experts.items():
            err = abs(y - guess)
            n = counts[name]
            errors[name] = err if n == 0 else keep * errors[name] + a * err
            counts[name] = n + 1
        if ensemble is None:
            return
        residual = y - ensemble
        if self._hi._is_updated:  # river_stats.update_quantile, inline
            self._lo._rolling_quantile.update(residual)
            self._hi._rolling_quantile.update(residual)
        else:
            update_quantile(self._lo, residual)
            update_quantile(self._hi, residual)

    def _observe(self, y: float, t: datetime | None) -> None:
        if t is not None:
            epoch = t.timestamp()
            last_t = self._last_t
            if last_t is not None and epoch > last_t:
                self._step = _ewm(self._step, epoch - last_t, _STEP_ALPHA)
            self._last_t = epoch
            self._last_bucket = self._remember(epoch, y)
        c = self.config
        fast, slow = self._fast, self._slow  # _ewm, inline: it runs for every metric and sample
        self._fast = y if fast is None else c.fast_alpha * y + (1.0 - c.fast_alpha) * fast
        self._slow = y if slow is None else c.slow_alpha * y + (1.0 - c.slow_alpha) * slow
        self._last = y
        self.n_seen += 1

    def _remember(self, epoch: float, y: float) -> int:
        minute = round(epoch / 60)
        self._history[minute] = y
        horizon_minutes = (self.config.season_seconds // 60) + self.config.horizon * 60 + 60
        if len(self._history) > 4 * horizon_minutes:  # prune rarely: dict order is insertion
            cutoff = minute - 2 * horizon_minutes
            self._history = {m: v for m, v in self._history.items() if m >= cutoff}
        bucket = self._bucket(epoch)
        deviation = y - (self._slow or 0.0)
        old = self._profile.get(bucket)
        a = self.config.season_alpha
        self._profile[bucket] = deviation if old is None else (1 - a) * old + a * deviation
        return bucket

    def snapshot(self) -> bytes:
        """The whole model state as bytes."""
        return pickle.dumps(self.__dict__, protocol=pickle.HIGHEST_PROTOCOL)

    @classmethod
    def restore(cls, blob: bytes) -> Forecaster:
        """A forecaster from `snapshot()` bytes."""
        model = cls.__new__(cls)
        state: dict[str, Any] = pickle.loads(blob)  # noqa: S301 - our own snapshot format
        model.__setstate__(state)
        return model

    def __setstate__(self, state: dict[str, Any]) -> None:
        # also what unpickling a whole forecaster (in an optimizer checkpoint) calls
        self.__dict__.update(state)
        if "_forecasted" in state:
            return
        # a snapshot from before the float levels and the derived fields: river EWMean objects
        for name in ("_fast", "_slow", "_step"):
            value = state[name]
            setattr(self, name, _ewm_value(value) if isinstance(value, stats.EWMean) else value)
        self._last_bucket = self._bucket(self._last_t) if self._last_t is not None else 0
        self._forecasted = self._forecast(self._experts()) if self._last is not None else None
