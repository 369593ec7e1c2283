"""The 9-feature normalised state of a service, built from its metric window and insights."""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from itertools import islice
from types import SimpleNamespace
from typing import NamedTuple

import numpy as np
from pydantic import BaseModel, Field

from models.dqn.tracking import BudgetTracking, TrackingSteps
from schemas import Insight, MetricSample

__all__ = ["FEATURES", "FeatureConfig", "ServiceWindow", "StateBuilder"]

FEATURES: tuple[str, ...] = (
    "cpu", "memory", "latency", "request_rate", "error_rate", "active_vms", "cost",
    "forecast_delta", "anomaly_score",
)
"""The state features, in the network's input order."""


class FeatureConfig(BaseModel):
    """How raw metrics are normalised into the state."""

    min_vms: int = Field(default=1, ge=0)
    """Lower VM bound of a service (active_vms is scaled between the bounds)."""
    max_vms: int = Field(default=20, ge=1)
    """Upper VM bound of a service."""
    slo_latency_ms: float = Field(default=250.0, gt=0)
    """Latency target; the latency feature is latency / target (capped at 4)."""
    cost_per_vm_hour: float = Field(default=0.10, gt=0)
    """VM price; the cost feature is cost / (max_vms × price)."""
    vm_capacity_rps: float | None = Field(default=None, gt=0)
    """Requests/s one VM serves; None estimates it online from rate / (VMs × CPU)."""
    window: int = Field(default=30, ge=3)
    """Samples kept per service: the demand level, trend and anomaly fallback read them."""
    load_quantile: float = Field(default=0.5, ge=0, le=1)
    """The request-rate feature is this quantile of the window's request rate over the
    provisioned capacity: real demand is so noisy tick to tick (NAB ELB: lag-1 autocorrelation
    0.23) that the last sample alone says little about the level to provision for. It is also
    the operating point of a trained model: models are trained at TRAIN_LOAD_QUANTILE (0.7) and
    deployed at the median, which sizes scale steps to the typical level and lets scale-downs
    come sooner (selected on 20 validation traces; docs/decisions.md)."""
    trend_short: int = Field(default=3, ge=1)
    """Samples of the short mean of the fallback trend (short mean / window mean - 1)."""
    insight_ttl_seconds: float = Field(default=600.0, gt=0)
    """An optimizer insight older than this is ignored (the fallback is used)."""
    slo_budget_pct: float = Field(default=1.0, ge=0, le=100)
    """The SLO's violation budget the controller runs for, percent of ticks (SLOConfig's
    budget_pct, NOVACRON_SLO__BUDGET_PCT, is copied here where the engine is built). It enters
    the state through the request-rate feature: see `budget_factor`."""
    budget_reference_pct: float | None = Field(default=None, gt=0, le=100)
    """The budget the loaded model was trained for (saved with it); None (models trained before
    budgets existed): the budget leaves the state alone."""
    budget_exponent: float = Field(default=0.15, ge=0, le=2)
    """How strongly the budget moves the request-rate feature: the feature is multiplied by
    (budget_reference_pct / slo_budget_pct) ** budget_exponent, so a tighter budget than the
    model's makes the same demand look closer to capacity (earlier, larger scale-ups) and a
    looser one farther (docs/decisions.md, "A DQN against an SLO budget")."""

    budget_tracking: BudgetTracking = Field(default_factory=BudgetTracking)
    """Per service, the realised violation share moves the request-rate feature so that the
    service spends its budget, no more and not much less (models/dqn/tracking.py). Only for a
    model trained for a budget, like the budget itself."""

    def budget_factor(self) -> float:
        """Multiplier of the request-rate feature for the configured budget (1 at the
        reference budget, or without one)."""
        if self.budget_reference_pct is None:
            return 1.0
        budget = max(self.slo_budget_pct, 0.1)  # a zero budget is treated as 0.1 %
        return float((self.budget_reference_pct / budget) ** self.budget_exponent)

    def tracking_steps(self) -> TrackingSteps | None:
        """The budget tracker's numbers (None: off, or a model trained before budgets)."""
        if self.budget_reference_pct is None:
            return None
        return self.budget_tracking.steps(self.slo_budget_pct)


@dataclass
class ServiceWindow:
    """What the engine remembers of one service."""

    samples: deque[MetricSample]
    """The latest samples, oldest first. Only the newest is read whole; of the others only
    `request_rate` is read (the level, trend and surprise), and a window restored from a
    snapshot holds them as rate-only stand-ins (see `__getstate__`)."""
    capacity_rps: float | None = None
    forecast: tuple[datetime, float] | None = None
    """Latest forecast insight: (time, relative delta)."""
    anomaly: tuple[datetime, float] | None = None
    last_state: np.ndarray = field(default_factory=lambda: np.zeros(len(FEATURES)))
    pressure: float = 1.0
    """The budget tracker's multiplier of the request-rate feature (1 without tracking)."""
    rates: list[float] = field(init=False, repr=False, compare=False)
    """The request rates of `samples` that report one, oldest first: kept in step with them by
    `StateBuilder.learn_one` so a state does not collect them again. Not saved: a snapshot
    holds the same fields as before it existed, and restoring rebuilds it from the samples."""

    def __post_init__(self) -> None:
        self.rates = _rates_of(self.samples)

    def __getstate__(self) -> dict[str, object]:
        state = dict(self.__dict__)
        del state["rates"]
        samples = self.samples
        if len(samples) > 1:
            # the older samples as rate-only stand-ins, the newest whole: a decision's snapshot
            # is ~5x smaller and pickles ~2x faster. SimpleNamespace is the standard library's,
            # so a worker of the previous version (rolled back to) restores it all the same.
            older = islice(samples, len(samples) - 1)
            state["samples"] = deque(
                [*(SimpleNamespace(request_rate=s.request_rate) for s in older), samples[-1]],
                maxlen=samples.maxlen)
        return state

    def __setstate__(self, state: dict[str, object]) -> None:
        state.setdefault("pressure", 1.0)  # snapshots from before budget tracking
        self.__dict__.update(state)
        self.rates = _rates_of(self.samples)


def _rates_of(samples: Iterable[MetricSample]) -> list[float]:
    return [r for s in samples if (r := s.request_rate) is not None]


class _Scales(NamedTuple):
    """The config's numbers the state reads, as plain values computed once (a pydantic field
    costs several plain reads; the config changes only through `set_budget_reference`)."""

    capacity_rps: float | None
    slo_latency_ms: float
    min_vms: int
    vm_span: int
    max_cost: float
    load_quantile: float
    trend_short: int
    insight_ttl_seconds: float

    @classmethod
    def of(cls, cfg: FeatureConfig) -> _Scales:
        return cls(cfg.vm_capacity_rps, cfg.slo_latency_ms, cfg.min_vms,
                   max(1, cfg.max_vms - cfg.min_vms), cfg.max_vms * cfg.cost_per_vm_hour,
                   cfg.load_quantile, cfg.trend_short, cfg.insight_ttl_seconds)


def _provisioned(sample: MetricSample) -> float:
    return float(sample.active_vms or 0) + sample.extra.get("booting_vms", 0.0)


class StateBuilder:
    """Per-service windows of telemetry → normalised 9-feature states (missing → neutral)."""

    def __init__(self, config: FeatureConfig | None = None) -> None:
        self.config = config or FeatureConfig()
        self._budget = self.config.budget_factor()
        """The budget's multiplier of the request-rate feature (the config does not change)."""
        self._tracking = self.config.tracking_steps()
        self._scales = _Scales.of(self.config)
        self.windows: dict[str, ServiceWindow] = {}
        self._built: dict[str, tuple[ServiceWindow, datetime | None, np.ndarray]] = {}
        """Per service the last state built (its window, `now`): closing a transition and the
        next decision ask for the same state; learn_one / learn_insight drop it."""

    def set_budget_reference(self, pct: float | None) -> None:
        """The reference budget of a newly loaded model (its config changes with it)."""
        self.config.budget_reference_pct = pct
        self._budget = self.config.budget_factor()
        self._tracking = self.config.tracking_steps()
        if self._tracking is None:  # e.g. a rollback to a model trained before budgets
            for window in self.windows.values():
                window.pressure = 1.0
        self._scales = _Scales.of(self.config)
        self._built.clear()

    def learn_one(self, sample: MetricSample) -> None:
        """Add a sample to its service's window."""
        service, rate = sample.resource_id, sample.request_rate
        self._built.pop(service, None)
        window = self.windows.get(service) or self._window(service)
        samples, rates = window.samples, window.rates
        if len(samples) == samples.maxlen and samples[0].request_rate is not None:
            del rates[0]  # the oldest sample is about to leave the window, and its rate with it
        samples.append(sample)
        if rate is not None:
            rates.append(rate)
        self._learn_capacity(window, sample.cpu_usage, rate, sample.active_vms)
        if self._tracking is not None:
            window.pressure = self._tracking.next(window.pressure, sample.network_latency_ms,
                                                  sample.error_rate)

    def learn_insight(self, insight: Insight) -> None:
        """Keep the latest forecast delta / anomaly score the optimizer sent for a resource."""
        self._built.pop(insight.resource_id, None)
        window = self._window(insight.resource_id)
        if insight.kind == "forecast" and insight.value is not None:
            current = self._current(window, insight.metric or "request_rate")
            if current is not None:
                delta = (insight.value - current) / max(abs(current), 1e-6)
                window.forecast = (insight.event_time, float(np.clip(delta, -1.0, 1.0)))
        elif insight.kind == "anomaly" and insight.score is not None:
            window.anomaly = (insight.event_time, float(insight.score))

    def state(self, service: str, now: datetime | None = None) -> np.ndarray | None:
        """The normalised state of a service, or None before its first sample (shared with the
        next caller asking at the same `now`: never modify it)."""
        window = self.windows.get(service)
        if window is None or not window.samples:
            return None
        built = self._built.get(service)
        if built is not None and built[0] is window and built[1] == now:
            return built[2]  # nothing it depends on changed since it was built
        x = self._build(window, now)
        self._built[service] = (window, now, x)
        return x

    def _build(self, window: ServiceWindow, now: datetime | None) -> np.ndarray:
        s, k = window.samples[-1], self._scales
        vms = _provisioned(s)
        cpu, memory, errors = s.cpu_usage, s.memory_usage, s.error_rate or 0.0
        cpu = cpu if cpu is not None else 50.0
        capacity = k.capacity_rps or window.capacity_rps
        rates = window.rates  # read, never modified: the level, trend and surprise
        if capacity:
            load = self._level(rates) / (max(vms, 1.0) * capacity)
        else:  # served share / accepted share ≈ offered load, even when saturated
            load = cpu / 100.0 / max(1.0 - errors, 0.05)
        now = now or s.event_time
        forecast, anomaly = window.forecast, window.anomaly
        pressure = window.pressure if self._tracking is not None else 1.0
        x = np.array([
            cpu / 100.0,
            (memory if memory is not None else 50.0) / 100.0,
            min((s.network_latency_ms or 0.0) / k.slo_latency_ms, 4.0),
            min(load * self._budget * pressure, 3.0),
            math.sqrt(errors),
            (vms - k.min_vms) / k.vm_span,
            min((s.cost_per_hour or 0.0) / k.max_cost, 2.0),
            self._fresh(forecast, now) if forecast else self._trend(rates),
            self._fresh(anomaly, now) if anomaly else self._surprise(rates),
        ], dtype=np.float32)
        window.last_state = x
        return x

    def forget(self, service: str) -> None:
        """Drop a service's window (and the state built from it)."""
        self.windows.pop(service, None)
        self._built.pop(service, None)

    def sizing_load(self, service: str, load: float) -> float:
        """The load a scale step is sized for: the state's `load`, or, for a service burning
        its SLO budget (tracker multiplier above 1), the latest demand over the provisioned
        capacity times the multiplier when that is higher. On spiky demand the window's median
        lags a surge by minutes: sized for it, scale-ups came one VM at a time, each behind the
        surge (docs/decisions.md, "Budget tracking")."""
        window = self.windows.get(service)
        if (self._tracking is None or window is None or window.pressure <= 1.0
                or not window.samples):
            return load
        s = window.samples[-1]
        capacity = self._scales.capacity_rps or window.capacity_rps
        if not capacity or s.request_rate is None:
            return load
        surge = s.request_rate * window.pressure / (max(_provisioned(s), 1.0) * capacity)
        return max(load, surge)

    def scale_down_held(self, service: str) -> float | None:
        """The service's multiplier when it holds scale-downs (at or above the tracker's
        `hold_scale_down_at`), else None."""
        window = self.windows.get(service)
        if self._tracking is None or window is None or window.pressure < self._tracking.hold:
            return None
        return window.pressure

    def latest(self, service: str) -> MetricSample | None:
        window = self.windows.get(service)
        return window.samples[-1] if window and window.samples else None

    def capacity(self, service: str) -> float | None:
        """Requests/s per VM (configured or estimated)."""
        window = self.windows.get(service)
        return self.config.vm_capacity_rps or (window.capacity_rps if window else None)

    # --- fallbacks and helpers ---------------------------------------------------------------
    def _window(self, service: str) -> ServiceWindow:
        window = self.windows.get(service)
        if window is None:
            window = self.windows[service] = ServiceWindow(deque(maxlen=self.config.window))
        return window

    def _learn_capacity(self, window: ServiceWindow, cpu: float | None, rate: float | None,
                        vms: int | None) -> None:
        if not (cpu and rate and vms) or not 5 < cpu < 90:
            return  # a saturated or idle VM says little about its capacity
        estimate = rate / (vms * cpu / 100.0)
        old = window.capacity_rps
        window.capacity_rps = estimate if old is None else 0.9 * old + 0.1 * estimate

    def _fresh(self, item: tuple[datetime, float] | None, now: datetime) -> float:
        if item is None or (now - item[0]).total_seconds() > self._scales.insight_ttl_seconds:
            return 0.0
        return item[1]

    # Plain Python on purpose: numpy's per-call overhead dominates on a dozen numbers, and this
    # runs on every event.
    def _level(self, rates: list[float]) -> float:
        """The demand level to provision for: a quantile of the window's request rate."""
        rates = sorted(rates)
        if not rates:
            return 0.0
        return rates[round(self._scales.load_quantile * (len(rates) - 1))]

    def _trend(self, rates: list[float]) -> float:
        """Fallback forecast delta: the short mean of the request rate over the window mean - 1.

        A short-versus-long ratio rather than a regression slope: on noisy demand a 6-point
        slope mostly fits noise, the ratio of means says whether the level is moving.
        """
        if len(rates) < 3:
            return 0.0
        short = rates[-self._scales.trend_short:]
        mean = sum(rates) / len(rates)
        if mean <= 0:
            return 0.0
        return min(1.0, max(-1.0, sum(short) / len(short) / mean - 1.0))

    def _surprise(self, rates: list[float]) -> float:
        """Fallback anomaly score: how far the latest rate is from the window, in [0, 1]."""
        if len(rates) < 4:
            return 0.0
        history = rates[:-1]
        mean = sum(history) / len(history)
        distance, margin = abs(rates[-1] - mean), 0.05 * mean
        if distance <= margin + 1e-9:
            # z ≤ 1 whatever the spread: the divisor is at least margin + 1e-9 in floats too
            # (rounding is monotonic), so the score is 0.0 without the pass over the window
            return 0.0
        # ** 2.0 is ** 2 (the exponent becomes 2.0 either way: libm's pow, which is not always
        # d * d) without converting the int per element
        std = math.sqrt(sum([(r - mean) ** 2.0 for r in history]) / len(history))
        z = distance / (std + margin + 1e-9)
        return min(1.0, max(0.0, (z - 1.0) / 4.0))

    def _current(self, window: ServiceWindow, metric: str) -> float | None:
        if not window.samples:
            return None
        value = getattr(window.samples[-1], metric, None)
        return float(value) if isinstance(value, int | float) else None
