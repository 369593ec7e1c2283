"""Autoscaling controllers for the simulator: static, the HPA rule, predictive scaling, the DQN."""

from __future__ import annotations

import math
from collections import deque
from datetime import datetime
from typing import Protocol

from agents.decision import DecisionEngine
from models.forecast import ForecastConfig, Forecaster
from schemas import Action, MetricSample, Outcome, action_id_for

__all__ = ["Controller", "DQNController", "HPAController", "PredictiveController",
           "StaticController"]


def _provisioned(sample: MetricSample) -> int:
    return int(sample.active_vms or 0) + int(sample.extra.get("booting_vms", 0.0))


def _scale(sample: MetricSample, delta: int, source: str, now: datetime) -> Action | None:
    if delta == 0:
        return None
    kind = "scale_up" if delta > 0 else "scale_down"
    return Action.caused_by(sample, action_id=f"{source}-{sample.event_id}", source=source,
                            event_time=now, resource_id=sample.resource_id, action_type=kind,
                            params={"delta": abs(delta)})


class Controller(Protocol):
    """Sees each service's sample, may return an action, and hears the action's outcome."""

    name: str

    def act(self, sample: MetricSample, now: datetime) -> Action | None: ...

    def feedback(self, outcome: Outcome) -> None: ...


class StaticController:
    """Provisioned once (at the start, for the peak) and never changed."""

    def __init__(self, name: str = "static-peak") -> None:
        self.name = name

    def act(self, sample: MetricSample, now: datetime) -> Action | None:
        return None

    def feedback(self, outcome: Outcome) -> None:
        return None


class HPAController:
    """The Kubernetes HPA rule on CPU: desired = ceil(current × utilisation / target).

    As in Kubernetes: no change while |utilisation / target - 1| ≤ tolerance; booting replicas
    count as 0 % when scaling up; scale-down follows the highest recommendation of the
    stabilisation window; bounds min/max.
    """

    def __init__(self, target: float, min_vms: int, max_vms: int, interval_seconds: float,
                 tolerance: float = 0.1, stabilisation_seconds: float = 300.0) -> None:
        self.name = f"hpa-{round(target * 100)}"
        self.target, self.min_vms, self.max_vms = target, min_vms, max_vms
        self.tolerance = tolerance
        size = max(1, math.ceil(stabilisation_seconds / interval_seconds))
        self.recommendations: dict[str, deque[int]] = {}
        self.window = size

    def desired(self, sample: MetricSample) -> int:
        current = _provisioned(sample)
        ready = int(sample.active_vms or 0)
        utilisation = (sample.cpu_usage or 0.0) / 100.0 * ready / max(current, 1)
        ratio = utilisation / self.target
        if abs(ratio - 1.0) <= self.tolerance:
            wanted = current
        else:
            wanted = math.ceil(current * ratio)
        history = self.recommendations.setdefault(sample.resource_id, deque(maxlen=self.window))
        history.append(wanted)
        if wanted < current:
            wanted = min(max(history), current)  # scale-down stabilisation window
        return max(self.min_vms, min(self.max_vms, wanted))

    def act(self, sample: MetricSample, now: datetime) -> Action | None:
        return _scale(sample, self.desired(sample) - _provisioned(sample), self.name, now)

    def feedback(self, outcome: Outcome) -> None:
        return None


class _Stabiliser:
    """Kubernetes' scale-down stabilisation: follow the highest recommendation of the window."""

    def __init__(self, window_seconds: float, interval_seconds: float) -> None:
        self.size = max(1, math.ceil(window_seconds / interval_seconds))
        self.history: dict[str, deque[int]] = {}

    def __call__(self, key: str, wanted: int, current: int) -> int:
        history = self.history.setdefault(key, deque(maxlen=self.size))
        history.append(wanted)
        return min(max(history), current) if wanted < current else wanted


class PredictiveController:
    """Predictive scaling as the clouds do it: forecast the demand `horizon` ticks ahead (the
    project's forecaster, its band read at `quantile`) and provision forecast ÷ (per-VM capacity
    × target utilisation); scale-downs go through the HPA's stabilisation window.

    The horizon defaults to the VM boot delay plus one tick, so a VM ordered now serves when the
    forecast demand arrives. Until the forecaster has seen enough samples it holds the fleet.
    """

    def __init__(self, target: float, quantile: float, capacity_rps: float, min_vms: int,
                 max_vms: int, interval_seconds: float, horizon: int = 3,
                 stabilisation_seconds: float = 300.0) -> None:
        self.name = f"predictive-q{round(quantile * 100)}-{round(target * 100)}"
        self.target, self.quantile, self.capacity = target, quantile, capacity_rps
        self.min_vms, self.max_vms = min_vms, max_vms
        band = min(0.45, max(0.01, 1.0 - quantile))
        self.config = ForecastConfig(horizon=horizon, band_quantile=band)
        self.forecasters: dict[str, Forecaster] = {}
        self.stabilise = _Stabiliser(stabilisation_seconds, interval_seconds)

    def forecast(self, sample: MetricSample) -> float | None:
        """The demand quantile `horizon` ticks after this sample (None at cold start)."""
        model = self.forecasters.setdefault(sample.resource_id, Forecaster(self.config))
        model.learn_one(float(sample.request_rate or 0.0), sample.event_time)
        forecast = model.predict_one()
        if forecast is None:
            return None
        return max(0.0, forecast.upper if self.quantile > 0.5 else forecast.value)

    def desired(self, sample: MetricSample) -> int:
        current = _provisioned(sample)
        demand = self.forecast(sample)
        if demand is None:
            return current
        wanted = math.ceil(demand / (self.capacity * self.target))
        wanted = self.stabilise(sample.resource_id, wanted, current)
        return max(self.min_vms, min(self.max_vms, wanted))

    def act(self, sample: MetricSample, now: datetime) -> Action | None:
        return _scale(sample, self.desired(sample) - _provisioned(sample), self.name, now)

    def feedback(self, outcome: Outcome) -> None:
        return None


class DQNController:
    """The decision engine in the loop: live decisions become actions, escalations do not."""

    def __init__(self, engine: DecisionEngine, name: str = "dqn") -> None:
        self.engine, self.name = engine, name
        self.escalated = 0

    def act(self, sample: MetricSample, now: datetime) -> Action | None:
        self.engine.observe(sample)
        decision = self.engine.decide(sample.resource_id, now)
        if decision is None or decision.mode == "shadow":
            return None
        if decision.requires_approval:
            self.escalated += 1  # nobody approves in a benchmark: it does not happen
            return None
        return Action.caused_by(decision, action_id=action_id_for(decision.event_id),
                                source="novacron.decision", event_time=now,
                                resource_id=decision.resource_id,
                                action_type=decision.decision_type, params=decision.params,
                                decision_id=decision.event_id)

    def feedback(self, outcome: Outcome) -> None:
        self.engine.record_outcome(outcome)
