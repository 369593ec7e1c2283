"""Streaming anomaly detector: river statistics, an ensemble of surprises and a likelihood score."""

from __future__ import annotations

import math
import pickle  # noqa: S403 - snapshots are our own model state, written and read by our workers
from collections import deque
from typing import Any

from pydantic import BaseModel, Field
from river import stats

from models.river_stats import update_quantile

__all__ = ["AnomalyConfig", "AnomalyDetector", "tail_score"]

_LOG10_E = math.log10(math.e)


def _log10_tail(z: float) -> float:
    """log10 of the Gaussian upper tail P(Z > z), with the asymptotic form where erfc underflows."""
    if z < 8.0:
        return math.log10(max(0.5 * math.erfc(z / math.sqrt(2.0)), 1e-300))
    return -(z * z / 2.0 + math.log(z * math.sqrt(2.0 * math.pi))) * _LOG10_E


def tail_score(z: float) -> float:
    """Map a z-score to [0, 1): 0 at or below the mean, 0.5 at tail P = 1e-5, → 1 as P → 0.

    Never saturates, so a corpus-wide threshold can still tell strong anomalies apart.
    """
    if z <= 0:
        return 0.0
    decades = -_log10_tail(z) - math.log10(2.0)  # 0 at z = 0
    return decades / (decades + 5.0)


class AnomalyConfig(BaseModel):
    """Settings of the detector (defaults measured on the NAB files, never per file)."""

    fast_alpha: float = Field(default=0.3, gt=0, le=1)
    """Fading factor of the short-term level the residual is measured against."""
    slow_alpha: float = Field(default=0.005, gt=0, le=1)
    """Fading factor of the long-term level and spread (what normal looks like)."""
    quantile_window: int = Field(default=2000, ge=10)
    """Rows of history for the rolling range quantiles (novelty of the value itself)."""
    range_quantile: float = Field(default=0.001, gt=0, lt=0.5)
    """Lower quantile of the rolling range (the upper one is 1 − this)."""
    short_window: int = Field(default=1, ge=1)
    """Rows averaged in the likelihood's short-term mean of the raw surprise."""
    warmup: int = Field(default=30, ge=1)
    """Rows before the detector scores anything (cold start returns 0.0)."""
    threshold: float = Field(default=0.3, gt=0, lt=1)
    """Calibrated score at or above which a row is an anomaly."""
    cooldown: int = Field(default=150, ge=0)
    """Rows after an alert during which scores are damped, so one event gives one alert."""
    w_resid: float = Field(default=0.0, ge=0)
    """Weight of the residual surprise (change against the recent level)."""
    w_level: float = Field(default=0.0, ge=0)
    """Weight of the distance from the long-run level, in long-run standard deviations."""
    w_range: float = Field(default=10.0, ge=0)
    """Weight of an excursion outside the rolling range, in range widths."""
    raw_floor: float = Field(default=0.03, gt=0)
    """Floor of the spread of surprises, so a tiny excursion after a calm spell is not an alarm."""
    min_spread: float = Field(default=1e-3, gt=0)
    """Relative floor of the spread, so a flat series does not turn noise into alarms."""


class _Channel:
    """Surprises of one metric: residual vs a fast level, value vs the long-run distribution."""

    def __init__(self, cfg: AnomalyConfig) -> None:
        self.fast = stats.EWMean(cfg.fast_alpha)
        self.resid_var = stats.EWVar(cfg.slow_alpha)
        self.level = stats.EWMean(cfg.slow_alpha)
        self.level_var = stats.EWVar(cfg.slow_alpha)
        self.lo = stats.RollingQuantile(cfg.range_quantile, cfg.quantile_window)
        self.hi = stats.RollingQuantile(1 - cfg.range_quantile, cfg.quantile_window)
        self.n = 0
        self.cfg = cfg

    def surprise(self, x: float) -> float:
        """Largest z-like surprise of x (0 before warm-up)."""
        if self.n < self.cfg.warmup:
            return 0.0
        c = self.cfg
        # river's Rust statistics without their Python wrappers (models/river_stats.py);
        # past warm-up the quantiles have been updated, so their wrappers would not return None
        floor = c.min_spread * (abs(self.level._ewmean.get()) + 1.0)
        lo, hi = self.lo._rolling_quantile.get() or 0.0, self.hi._rolling_quantile.get() or 0.0
        best = c.w_range * max(lo - x, x - hi, 0.0) / (hi - lo + floor)
        # the two z-score members measured worse on NAB than the range alone: off by default
        if c.w_resid:
            resid = abs(x - self.fast.get()) / (math.sqrt(max(0.0, self.resid_var.get())) + floor)
            best = max(best, c.w_resid * resid)
        if c.w_level:
            level = abs(x - self.level.get()) / (math.sqrt(max(0.0, self.level_var.get())) + floor)
            best = max(best, c.w_level * level)
        return best

    def learn(self, x: float) -> None:
        c = self.cfg
        # a statistic only a disabled member reads is not kept up to date (the weights are part
        # of the config, which never changes for a detector)
        if c.w_resid:
            if self.n:
                self.resid_var.update(x - self.fast.get())
            self.fast.update(x)
        self.level._ewmean.update(x)
        if c.w_level:
            self.level_var.update(x)
        if self.n:  # updated before: straight to the Rust statistics (river_stats.update_quantile)
            self.lo._rolling_quantile.update(x)
            self.hi._rolling_quantile.update(x)
        else:
            update_quantile(self.lo, x)
            update_quantile(self.hi, x)
        self.n += 1


class AnomalyDetector:
    """Anomaly score in [0, 1] per sample of one resource (river verbs, predict then learn).

    Per metric, the surprise is the excursion of the value outside its rolling 0.1–99.9 % range
    (river RollingQuantile over 2000 rows), optionally max-combined with the residual of a fast
    EWMA and the distance from the long-run level (both measured weaker on NAB, so off by default);
    metrics combine by max. The surprise is compared with the long-run distribution of surprises
    (Numenta's anomaly likelihood), giving a tail probability mapped to [0, 1). After an alert, a
    cooldown damps weaker scores so that one event raises one alert.
    Missing metrics are skipped, never treated as zero.
    """

    def __init__(self, config: AnomalyConfig | None = None, seed: int = 0) -> None:
        self.config = config or AnomalyConfig()
        self.seed = seed  # no randomness today; kept so every model is built the same way
        self._channels: dict[str, _Channel] = {}
        self._recent: deque[float] = deque(maxlen=self.config.short_window)
        self._raw_mean = stats.EWMean(self.config.slow_alpha)
        self._raw_var = stats.EWVar(self.config.slow_alpha)
        self._quiet = 0
        self._alert_score = 1.0
        self.n_seen = 0

    @property
    def threshold(self) -> float:
        """Score at or above which a sample is an anomaly."""
        return self.config.threshold

    def _raw(self, x: dict[str, float]) -> float:
        raw = 0.0
        for name, value in x.items():
            channel = self._channels.get(name)
            if channel is not None and value is not None:
                raw = max(raw, channel.surprise(float(value)))
        return math.log1p(raw)  # compress: heavy tails would swamp the running spread

    def _likelihood(self, raw: float) -> float:
        if self.n_seen < self.config.warmup * 2:
            return 0.0
        recent = list(self._recent) + [raw]
        window = self.config.short_window
        short = sum(recent[-window:]) / min(len(recent), window)
        spread = math.sqrt(max(0.0, self._raw_var._ewvar.get())) + self.config.raw_floor
        return tail_score((short - self._raw_mean._ewmean.get()) / spread)

    def _score(self, raw: float) -> float:
        score = self._likelihood(raw)
        # during a cooldown only an event stronger than the one that alerted breaks through
        if self._quiet > 0 and score < self._alert_score:
            score *= 0.5 * (1.0 - self._quiet / (self.config.cooldown + 1))
        return score

    def score_one(self, x: dict[str, float]) -> float:
        """Calibrated anomaly score of a sample before learning it (0.0 at cold start)."""
        return self._score(self._raw(x))

    def learn_one(self, x: dict[str, float]) -> None:
        """Learn a sample."""
        raw = self._raw(x)
        self._learn(x, raw, self._score(raw))

    def score_learn(self, x: dict[str, float]) -> float:
        """Score then learn one sample (the prequential step), computing the surprise once."""
        raw = self._raw(x)
        score = self._score(raw)
        self._learn(x, raw, score)
        return score

    def _learn(self, x: dict[str, float], raw: float, score: float) -> None:
        if score >= self.threshold:
            self._quiet, self._alert_score = self.config.cooldown, score
        else:
            self._quiet = max(0, self._quiet - 1)
        self._recent.append(raw)
        self._raw_mean._ewmean.update(raw)
        self._raw_var._ewvar.update(raw)
        channels = self._channels
        for name, value in x.items():
            if value is None:
                continue
            channel = channels.get(name)
            if channel is None:  # not setdefault: that would build a channel on every call
                channel = channels[name] = _Channel(self.config)
            channel.learn(float(value))
        self.n_seen += 1

    def snapshot(self) -> bytes:
        """The whole model state as bytes."""
        return pickle.dumps(self.__dict__, protocol=pickle.HIGHEST_PROTOCOL)

    @classmethod
    def restore(cls, blob: bytes) -> AnomalyDetector:
        """A detector from `snapshot()` bytes."""
        model = cls.__new__(cls)
        state: dict[str, Any] = pickle.loads(blob)  # noqa: S301 - our own snapshot format
        model.__dict__.update(state)
        return model
