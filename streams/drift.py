"""The drift agent's host-side gauges (govern role): findings by severity, baselines, rules.

The detector runs in the generic host (streams/wiring.py): config changes from the role's
consumer, baselines and ignore rules from the compacted `desired` and `drift-ignores` topics
(one copy per process: agents/shared.py), open findings checkpointed to `govern-state`.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

from prometheus_client import CollectorRegistry, Counter, Gauge

from agents.api_routes import register_extension
from agents.drift import DriftDetector
from agents.report_api import FindingsApi
from agents.shared import SharedState
from schemas import DriftFinding, Event
from streams.metrics import REGISTRY

__all__ = ["DriftCompanion", "DriftMetrics", "drift_metrics"]


class DriftMetrics:
    """Prometheus metrics of the drift agent (one set per registry)."""

    def __init__(self, registry: CollectorRegistry | None) -> None:
        self.findings = Counter("novacron_drift_findings_total", "Drift findings by severity and "
                                "status", ["severity", "status"], registry=registry)
        self.baselines = Gauge("novacron_drift_baselines", "Resources with a baseline",
                               registry=registry)
        self.ignore_rules = Gauge("novacron_drift_ignore_rules",
                                  "Ignore rules from the drift-ignores topic", registry=registry)


@functools.cache  # a registry refuses the same metric names twice
def drift_metrics(registry: CollectorRegistry = REGISTRY) -> DriftMetrics:
    """The process's drift metrics in `registry`."""
    return DriftMetrics(registry)


class DriftCompanion:
    """Counts findings; shows how many baselines and ignore rules the process holds."""

    def __init__(self, shared: SharedState, metrics: DriftMetrics | None = None,
                 detector: DriftDetector | None = None) -> None:
        self.shared, self.metrics = shared, metrics or drift_metrics()
        if detector is not None:  # GET /drift/findings on the control API
            register_extension(FindingsApi(detector.open_findings))

    def observe(self, events: Sequence[Event]) -> None:
        for e in events:
            if isinstance(e, DriftFinding):
                self.metrics.findings.labels(e.severity, e.status).inc()

    def tick(self) -> None:
        self.metrics.baselines.set(len(self.shared.desired))
        self.metrics.ignore_rules.set(len(self.shared.ignores.rules))

    def forgotten(self, key: str) -> None:
        return None
