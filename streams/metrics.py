"""Prometheus metrics of a worker process, exported on its web port at /metrics."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

__all__ = ["REGISTRY", "WorkerMetrics", "render"]

REGISTRY = CollectorRegistry(auto_describe=True)
"""One registry per process (each role is its own process)."""


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
        self.policy_latency = Histogram(
            "novacron_policy_evaluation_seconds",
            "Latency of one policy evaluation",
            buckets=(0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05),
            registry=registry,
        )


def render(registry: CollectorRegistry = REGISTRY) -> bytes:
    """The text exposition format of every metric in the registry."""
    return generate_latest(registry)
