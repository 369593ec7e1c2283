"""The generic host's metrics: one style for every agent (events, dead letters, checkpoints)."""

from __future__ import annotations

import functools

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from streams.metrics import REGISTRY

__all__ = ["HostMetrics", "host_metrics"]


class HostMetrics:
    """Counters per agent and event type; `registry=None` gives an unregistered set (tests)."""

    def __init__(self, registry: CollectorRegistry | None) -> None:
        self.events = Counter(
            "novacron_agent_events_total",
            "Inputs per agent: handled, replayed (already in restored state) or dead-lettered",
            ["agent", "event_type", "result"], registry=registry)
        self.emitted = Counter(
            "novacron_agent_emitted_total", "Events emitted per agent and type",
            ["agent", "event_type"], registry=registry)
        self.dead_letters = Counter(
            "novacron_agent_dead_letters_total",
            "Records dead-lettered by a role's host, by source topic and error kind",
            ["role", "topic", "kind"], registry=registry)
        self.batch_seconds = Histogram(
            "novacron_host_batch_seconds", "Decode, handle, emit and checkpoint of one batch",
            ["role"], buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
            registry=registry)
        self.checkpoints = Counter(
            "novacron_agent_checkpoints_total", "Keys saved to the state topic, by reason",
            ["agent", "reason"], registry=registry)
        self.restores = Counter(
            "novacron_agent_restores_total", "Keys restored on assignment, by result",
            ["agent", "result"], registry=registry)
        self.keys = Gauge("novacron_agent_keys", "Keys an agent holds state for",
                          ["agent"], registry=registry)
        self.followed = Counter(
            "novacron_host_followed_records_total",
            "Records of followed compacted topics, by topic and result", ["topic", "result"],
            registry=registry)


@functools.cache  # a registry refuses the same metric names twice
def host_metrics(registry: CollectorRegistry = REGISTRY) -> HostMetrics:
    """The process's host metrics in `registry`."""
    return HostMetrics(registry)
