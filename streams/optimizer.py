"""The optimizer's host-side gauges: forecast quality per resource, anomalies, recommendations.

The optimizer itself runs in the generic host (streams/wiring.py, role `learn`); its per-resource
models are checkpointed to `learn-state` like every agent's state.
"""

from __future__ import annotations

import contextlib
import functools
import time
from collections.abc import Iterable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge

from agents.contract import Agent
from agents.optimizer import FORECAST_METRICS, Optimizer
from schemas import Event, Insight
from streams.metrics import REGISTRY, RecommendationMetrics

__all__ = ["OptimizerCompanion", "OptimizerMetrics", "optimizer_metrics"]


class OptimizerMetrics:
    """Prometheus metrics of the optimizer (`optimizer_metrics()`: one set per registry)."""

    def __init__(self, registry: CollectorRegistry | None) -> None:
        def gauge(name: str, doc: str, *labels: str) -> Gauge:
            return Gauge(f"novacron_optimizer_{name}", doc, labels, registry=registry)

        self.mae = gauge("mae", "Online forecast MAE", "resource", "metric")
        self.mape = gauge("mape", "Online forecast MAPE (%)", "resource", "metric")
        self.mae_all = gauge("overall_mae", "Forecast MAE over every resource", "metric")
        self.mape_all = gauge("overall_mape", "Forecast MAPE (%) over every resource", "metric")
        self.resources = gauge("resources", "Resources with models in memory")
        self.anomalies = Counter("novacron_optimizer_anomalies", "Anomaly insights emitted",
                                 registry=registry)
        self.recommendations = RecommendationMetrics(registry)

    def count(self, events: Iterable[Event]) -> None:
        for e in events:
            if isinstance(e, Insight) and e.kind == "anomaly":
                self.anomalies.inc()
            elif isinstance(e, Insight) and e.kind == "recommendation":
                self.recommendations.count(e)

    def refresh(self, quality: dict[str, Any], n_resources: int) -> None:
        self.resources.set(n_resources)
        for rid, per_metric in quality["resources"].items():
            for metric, q in per_metric.items():
                _set(self.mae, q["mae"], rid, metric)
                _set(self.mape, q["mape"], rid, metric)
        for metric, q in quality["overall"].items():
            _set(self.mae_all, q["mae"], metric)
            _set(self.mape_all, q["mape"], metric)

    def forget(self, rid: str) -> None:
        for g, metric in ((g, m) for g in (self.mae, self.mape) for m in FORECAST_METRICS):
            with contextlib.suppress(KeyError):  # never had a value
                g.remove(rid, metric)


@functools.cache  # a registry refuses the same metric names twice
def optimizer_metrics(registry: CollectorRegistry = REGISTRY) -> OptimizerMetrics:
    """The process's optimizer metrics in `registry`."""
    return OptimizerMetrics(registry)


def _set(gauge: Gauge, value: float | None, *labels: str) -> None:
    if value is not None:
        gauge.labels(*labels).set(value)


class OptimizerCompanion:
    """Counts what the optimizer emits; refreshes the quality gauges every `gauges_seconds`."""

    def __init__(self, optimizer: Optimizer, metrics: OptimizerMetrics, gauges_seconds: float
                 ) -> None:
        self.optimizer, self.metrics, self.gauges_seconds = optimizer, metrics, gauges_seconds
        self._refreshed = 0.0

    @classmethod
    def of(cls, agent: Agent, gauges_seconds: float) -> OptimizerCompanion:
        if not isinstance(agent, Optimizer):
            raise TypeError(f"the optimizer's gauges need an Optimizer, not {type(agent)}")
        return cls(agent, optimizer_metrics(), gauges_seconds)

    def observe(self, events: Iterable[Event]) -> None:
        self.metrics.count(events)

    def tick(self) -> None:
        # quality() walks every resource in memory: not on every tick
        now = time.monotonic()
        if now - self._refreshed >= self.gauges_seconds:
            self._refreshed = now
            self.metrics.refresh(self.optimizer.quality(), len(self.optimizer.resources()))

    def forgotten(self, key: str) -> None:
        self.metrics.forget(key)  # the next owner exports it now
