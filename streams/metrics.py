"""Prometheus metrics of a worker process, exported on its web port at /metrics."""

from __future__ import annotations

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    disable_created_metrics,
    generate_latest,
)

from schemas import Insight
from streams.seed_metrics import seed_names

__all__ = ["REGISTRY", "RecommendationMetrics", "WorkerMetrics", "render"]

REGISTRY = CollectorRegistry(auto_describe=True)
"""One registry per process (each role is its own process)."""
ProcessCollector(registry=REGISTRY)  # process_* (memory, CPU, open files): leaks show up here
disable_created_metrics()  # no `*_created` series: Prometheus detects counter resets itself


class WorkerMetrics:
    """The metric families every role shares; agents add their own through `REGISTRY`."""

    def __init__(self, registry: CollectorRegistry = REGISTRY) -> None:
        self.events = Counter(
            "novacron_events_processed_total",
            "Events processed, by agent and topic",
            ["agent", "topic"],
            registry=registry,
        )
        self.dlq = Counter(
            "novacron_dlq_total",
            "Records dead-lettered, by source topic and error kind",
            ["topic", "kind"],
            registry=registry,
        )
        self.sink_rows = Counter(
            "novacron_sink_rows_total",
            "Rows inserted into ClickHouse, by table",
            ["table"],
            registry=registry,
        )
        self.sink_decoded = Counter(
            "novacron_sink_decoded_total",
            "Records the history sink decoded, by topic and path (fast, pydantic)",
            ["topic", "path"],
            registry=registry,
        )
        self.sink_batches = Counter(
            "novacron_sink_batches_total", "Insert batches committed", registry=registry
        )
        self.sink_insert_seconds = Histogram(
            "novacron_sink_insert_seconds",
            "Latency of one batch insert (all tables)",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=registry,
        )
        self.sink_failures = Counter(
            "novacron_sink_insert_failures_total",
            "Failed insert attempts (retried)",
            registry=registry,
        )
        self.lag = Gauge(
            "novacron_consumer_lag",
            "Records behind the end of the partition",
            ["group", "topic", "partition"],
            registry=registry,
        )
        self.decision_latency = Histogram(
            "novacron_decision_latency_seconds",
            "Latency of one decision",
            buckets=(0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05),
            registry=registry,
        )


class RecommendationMetrics:
    """The optimizer's recommendations: how many, and what they estimate (learn role)."""

    def __init__(self, registry: CollectorRegistry | None) -> None:
        self.total = Counter(
            "novacron_optimizer_recommendations_total",
            "Recommendations by kind; auto: also a Decision", ["kind", "auto"], registry=registry)
        self.improvement = Histogram(
            "novacron_optimizer_recommendation_improvement_percent",
            "Improvement (percent) the recommender estimated for each recommendation, by kind",
            ["kind"], buckets=(1, 2, 5, 10, 20, 30, 50, 75, 100), registry=registry)
        self.confidence = Histogram(
            "novacron_optimizer_recommendation_confidence",
            "Confidence (0-1) of each recommendation, by kind",
            ["kind"], buckets=(0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0),
            registry=registry)

    def count(self, insight: Insight) -> None:
        """One recommendation insight emitted."""
        kind = str(insight.details.get("recommendation", "unknown"))
        self.total.labels(kind, str(not insight.dry_run).lower()).inc()
        if insight.estimated_improvement is not None:
            self.improvement.labels(kind).observe(insight.estimated_improvement)
        if insight.confidence is not None:
            self.confidence.labels(kind).observe(insight.confidence)


def render(registry: CollectorRegistry = REGISTRY, role: str | None = None) -> bytes:
    """The text exposition format of every metric in the registry, plus the role's seed names
    (streams.seed_metrics) when a role is given."""
    return generate_latest(registry if role is None else seed_names(registry, role))
