"""The optimizer agent's pure logic: per-resource forecasts, anomalies and recommendations."""

from __future__ import annotations

import pickle  # noqa: S403 - snapshots are our own model state, written and read by our workers
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import BaseModel, Field

from agents.contract import Examples, refuse
from models.anomaly import AnomalyConfig, AnomalyDetector
from models.forecast import ForecastConfig, Forecaster
from models.recommend import Recommendation, RecommendConfig, Recommender
from schemas import Decision, Event, Insight, MetricSample
from schemas.errors import DecodeError

__all__ = ["FORECAST_METRICS", "Optimizer", "OptimizerConfig"]

FORECAST_METRICS = ("cpu_usage", "memory_usage", "network_latency_ms", "cost_per_hour")
"""Metrics forecast per resource."""
ANOMALY_METRICS = FORECAST_METRICS + ("request_rate", "error_rate")
"""Metrics the anomaly detector watches."""
SOURCE = "novacron.optimizer"
_SNAPSHOT_VERSION = 1


class OptimizerConfig(BaseModel):
    """Settings of the optimizer agent."""

    forecast: ForecastConfig = Field(default_factory=lambda: ForecastConfig(horizon=3))
    """Forecaster settings (horizon = intervals ahead)."""
    anomaly: AnomalyConfig = Field(default_factory=AnomalyConfig)
    """Anomaly detector settings (threshold, cooldown)."""
    recommend: RecommendConfig = Field(default_factory=RecommendConfig)
    """Recommender settings (CPU band, memory limit)."""
    forecast_every: int = Field(default=12, ge=1)
    """Emit forecast insights every N samples of a resource (keeps the insights topic small)."""
    recommend_every: int = Field(default=60, ge=1)
    """Evaluate and emit recommendations every N samples of a resource."""
    auto_apply_confidence: float | None = Field(default=None, ge=0, le=1)
    """Recommendations at or above this confidence also become Decisions (None: never)."""
    seed: int = 0
    """Seed of every model (they are deterministic; kept for reproducibility)."""


@dataclass
class _Quality:
    """Online MAE/MAPE of one series of forecasts."""

    n: int = 0
    abs_err: float = 0.0
    pct_err: float = 0.0
    n_pct: int = 0

    def update(self, err: float, actual: float) -> None:
        self.n += 1
        self.abs_err += err
        if abs(actual) > 1e-9:  # MAPE is undefined at 0
            self.n_pct += 1
            self.pct_err += 100.0 * err / abs(actual)

    def as_dict(self) -> dict[str, float | int | None]:
        return {
            "n": self.n,
            "mae": self.abs_err / self.n if self.n else None,
            "mape": self.pct_err / self.n_pct if self.n_pct else None,
        }


@dataclass
class _ResourceState:
    """Every model of one resource (what a snapshot holds)."""

    forecasters: dict[str, Forecaster]
    detector: AnomalyDetector
    recommender: Recommender
    quality: dict[str, _Quality] = field(default_factory=dict)
    seen: int = 0


def decision_params(rec: Recommendation) -> dict[str, Any]:
    """The runbook parameters of a recommendation's decision (only what its runbook declares:
    the gate refuses anything else); the rest of the estimate goes to expected_impact."""
    if rec.decision_type in ("scale_up", "scale_down"):
        return {"delta": max(1, round(abs(rec.params.get("delta_vms", 1.0))))}
    if rec.decision_type == "apply_recommendation" and "memory_increase_pct" in rec.params:
        pct = float(rec.params["memory_increase_pct"])
        return {"memory_increase_pct": round(min(max(pct, 0.0), 200.0), 2)}
    return {}


def _impact(rec: Recommendation) -> dict[str, float]:
    saved = rec.params.get("cost_per_hour_saved")
    return {"cost_per_hour": -float(saved)} if saved is not None else {}


def _values(sample: MetricSample) -> tuple[dict[str, float], dict[str, float]]:
    """The sample's metrics (what the detector watches) and the same plus active_vms."""
    # missing is not zero: only the metrics present in this sample
    metrics = {m: float(v) for m in ANOMALY_METRICS if (v := getattr(sample, m)) is not None}
    if sample.active_vms is None:
        return metrics, metrics
    return metrics, {**metrics, "active_vms": float(sample.active_vms)}


class Optimizer:
    """Per-resource prequential learning: `process(sample)` returns the insights (and decisions).

    An agent of the host contract (agents/contract.py): one resource's models are one key.
    """

    name = "optimizer"
    inputs: tuple[type[Event], ...] = (MetricSample,)

    def __init__(self, config: OptimizerConfig | None = None) -> None:
        self.config = config or OptimizerConfig()
        self._state: dict[str, _ResourceState] = {}

    def _new_state(self) -> _ResourceState:
        c = self.config
        return _ResourceState(
            {m: Forecaster(c.forecast, c.seed) for m in FORECAST_METRICS},
            AnomalyDetector(c.anomaly, c.seed),
            Recommender(c.recommend, c.seed),
        )

    def _get(self, resource_id: str) -> _ResourceState:
        state = self._state.get(resource_id)
        if state is None:
            state = self._state[resource_id] = self._new_state()
        return state

    def process(self, sample: MetricSample) -> list[Event]:
        """Score, then learn one sample; return the insights and decisions it causes."""
        state = self._get(sample.resource_id)
        metrics, values = _values(sample)
        events: list[Event] = []
        self._forecast_step(state, metrics, sample.event_time)
        score = state.detector.score_learn(metrics)
        if score >= state.detector.threshold:
            events.append(self._anomaly(sample, state, score, metrics))
        state.recommender.learn_one(values)  # never mutates it (models/checks.py)
        state.seen += 1
        if state.seen % self.config.forecast_every == 0:
            events.extend(self._forecasts(sample, state))
        if state.seen % self.config.recommend_every == 0:
            for rec in state.recommender.predict_one():
                events.extend(self._recommendation(sample, rec))
        return events

    @staticmethod
    def _forecast_step(state: _ResourceState, metrics: dict[str, float], at: datetime) -> None:
        """Per forecast metric present: the error of the forecast that targeted it, then learn."""
        for metric, model in state.forecasters.items():
            value = metrics.get(metric)
            if value is None:
                continue
            err = model.score_one(value)
            if err is not None:
                quality = state.quality.get(metric)
                if quality is None:
                    quality = state.quality[metric] = _Quality()
                quality.update(err, value)
            model.learn_one(value, at)

    def _anomaly(
        self, sample: MetricSample, state: _ResourceState, score: float, x: dict[str, float]
    ) -> Insight:
        return Insight.caused_by(
            sample, source=SOURCE, resource_id=sample.resource_id, kind="anomaly",
            value=score, score=min(1.0, score), threshold=state.detector.threshold,
            details={"metrics": x, "quality": self._resource_quality(state)},
        )

    def _forecasts(self, sample: MetricSample, state: _ResourceState) -> list[Event]:
        out: list[Event] = []
        for metric, model in state.forecasters.items():
            forecast = model.predict_one()
            if forecast is None:
                continue
            out.append(Insight.caused_by(
                sample, source=SOURCE, resource_id=sample.resource_id, kind="forecast",
                metric=metric, value=forecast.value, lower=forecast.lower, upper=forecast.upper,
                horizon=forecast.horizon,
                details={"weights": forecast.weights,
                         "quality": state.quality.get(metric, _Quality()).as_dict()},
            ))
        return out

    def _recommendation(self, sample: MetricSample, rec: Recommendation) -> list[Event]:
        threshold = self.config.auto_apply_confidence
        auto = threshold is not None and rec.confidence >= threshold
        insight = Insight.caused_by(
            sample, source=SOURCE, resource_id=sample.resource_id, kind="recommendation",
            metric=rec.metric, value=rec.target, confidence=rec.confidence,
            estimated_improvement=rec.estimated_improvement, actions=rec.actions,
            dry_run=not auto,
            details={"recommendation": rec.kind, "reason": rec.reason, "params": rec.params},
        )
        if not auto:
            return [insight]
        decision = Decision.caused_by(
            insight, source=SOURCE, resource_id=sample.resource_id,
            decision_type=rec.decision_type, origin="optimizer", confidence=rec.confidence,
            reasoning=f"{rec.kind}: {rec.reason}; " + "; ".join(rec.actions),
            expected_impact={rec.metric: rec.target, **_impact(rec)},
            params=decision_params(rec),
        )
        return [insight, decision]

    @staticmethod
    def _resource_quality(state: _ResourceState) -> dict[str, Any]:
        return {m: q.as_dict() for m, q in state.quality.items()}

    def quality(self) -> dict[str, Any]:
        """Online forecast quality: per resource and metric, and overall per metric."""
        overall: dict[str, _Quality] = {}
        for state in self._state.values():
            for metric, q in state.quality.items():
                agg = overall.setdefault(metric, _Quality())
                agg.n += q.n
                agg.abs_err += q.abs_err
                agg.pct_err += q.pct_err
                agg.n_pct += q.n_pct
        return {
            "resources": {r: self._resource_quality(s) for r, s in self._state.items()},
            "overall": {m: q.as_dict() for m, q in overall.items()},
        }

    def resources(self) -> list[str]:
        """Resources with models in memory."""
        return sorted(self._state)

    def snapshot(self, resource_id: str) -> bytes | None:
        """Every model of one resource as bytes (for a compacted checkpoint topic)."""
        state = self._state.get(resource_id)
        if state is None:
            return None
        return pickle.dumps((_SNAPSHOT_VERSION, state), protocol=pickle.HIGHEST_PROTOCOL)

    def restore(self, resource_id: str, blob: bytes) -> None:
        """Resume a resource's models from `snapshot()` bytes."""
        try:
            version, state = pickle.loads(blob)  # noqa: S301 - our own checkpoint topic
        except Exception as exc:  # pickle raises many types on garbled bytes
            raise DecodeError(f"optimizer snapshot of {resource_id} is corrupt: {exc}") from exc
        if version != _SNAPSHOT_VERSION or not isinstance(state, _ResourceState):
            raise DecodeError(f"optimizer snapshot of {resource_id} has unknown version {version}")
        self._state[resource_id] = state

    def snapshot_all(self) -> dict[str, bytes]:
        """Snapshots of every resource in memory."""
        return {r: blob for r in self._state if (blob := self.snapshot(r)) is not None}

    def forget(self, resource_id: str) -> None:
        """Drop a resource's models (its partition moved to another worker)."""
        self._state.pop(resource_id, None)

    # --- the agent contract ---------------------------------------------------------------------
    def handle(self, event: Event) -> list[Event]:
        """`process` for the host: a sample in, its insights (and decisions) out."""
        if isinstance(event, MetricSample):
            return self.process(event)
        refuse(self, event)

    def tick(self, now: datetime) -> list[Event]:
        return []

    def state_key(self, event: Event) -> str | None:
        return event.resource_id if isinstance(event, MetricSample) else None

    @classmethod
    def examples(cls) -> Examples:
        """Two resources with a daily shape and a spike: forecasts, an anomaly, recommendations."""
        t0 = datetime(2025, 6, 2, tzinfo=UTC)
        samples = [
            MetricSample(resource_id=rid, event_id=f"{rid}-{i}",
                         event_time=t0 + timedelta(minutes=i),
                         cpu_usage=min(100.0, 35 + 10 * ((i * (j + 2)) % 7) + 55 * (i == 90)),
                         memory_usage=40.0 + j, network_latency_ms=20.0 + i % 5,
                         cost_per_hour=0.2, active_vms=2, request_rate=100.0 + i % 9)
            for i in range(130) for j, rid in enumerate(("vm-a", "vm-b"))
        ]
        return Examples(inputs=samples)
