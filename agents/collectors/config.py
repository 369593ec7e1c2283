"""Typed configuration of the collectors: remote-write mapping rules, limits and alert routes."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from agents.collectors.rules import (
    GaugeRule,
    QuantileRule,
    RateRule,
    RatioRule,
    Rule,
    Selector,
)

__all__ = [
    "DEFAULT_RULES",
    "RESERVED_VARIABLES",
    "AlertRoute",
    "AlertsConfig",
    "CollectorConfig",
    "LabelVariable",
    "RemoteWriteConfig",
]

_HTTP_REQUESTS = ["http_requests_total"]

DEFAULT_RULES: tuple[Rule, ...] = (
    # node_exporter: busy share of every core = 1 − idle seconds per second, averaged
    RateRule(
        field="cpu_usage",
        series=Selector(metrics=["node_cpu_seconds_total"], match={"mode": "idle"}),
        aggregate="avg",
        scale=-100.0,
        offset=100.0,
    ),
    RatioRule(
        field="memory_usage",
        numerator=Selector(metrics=["node_memory_MemAvailable_bytes"]),
        denominator=Selector(metrics=["node_memory_MemTotal_bytes"]),
        complement=True,
        scale=100.0,
    ),
    RateRule(
        field="extra.network_bytes_per_second",
        series=Selector(
            metrics=["node_network_receive_bytes_total", "node_network_transmit_bytes_total"],
            exclude={"device": "lo"},
        ),
    ),
    # an instrumented HTTP service (client_golang / prometheus_client naming)
    RateRule(field="request_rate", series=Selector(metrics=_HTTP_REQUESTS)),
    RatioRule(
        field="error_rate",
        numerator=Selector(metrics=_HTTP_REQUESTS, match={"code": "5.."}),
        denominator=Selector(metrics=_HTTP_REQUESTS),
        of="rate",
        numerator_default=0.0,
    ),
    QuantileRule(
        field="network_latency_ms",
        series=Selector(metrics=["http_request_duration_seconds_bucket"]),
        quantile=0.95,
        scale=1000.0,
    ),
    # series already named like a MetricSample field are taken as they are
    *(
        GaugeRule(field=name, series=Selector(metrics=[name]))
        for name in (
            "cpu_usage",
            "memory_usage",
            "network_latency_ms",
            "request_rate",
            "error_rate",
            "active_vms",
            "cost_per_hour",
        )
    ),
)
"""Rules used when none are configured: node_exporter CPU/memory/network, HTTP request rate,
5xx error ratio (label `code`), p95 latency from a histogram, and direct fields."""

_LABEL_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class RemoteWriteConfig(BaseModel):
    """The Prometheus remote-write receiver: how series become MetricSamples, and its limits."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id_labels: list[str] = Field(default_factory=lambda: ["instance"], min_length=1)
    """Labels holding the resource id, first present wins (`pod`, `instance`, `job`, …)."""
    resource_type: str = Field(default="host", min_length=1, max_length=64)
    """`resource_type` of the samples unless `type_label` is present on the series."""
    type_label: str | None = None
    """Label whose value becomes `resource_type` (e.g. `kind`); None: always `resource_type`."""
    cluster_label: str = "cluster"
    """Label holding the cluster name; absent: `default_cluster`."""
    default_cluster: str = Field(default="default", min_length=1, max_length=128)
    """Cluster of series without `cluster_label`."""
    copy_labels: list[str] = Field(default_factory=lambda: ["job"])
    """Labels copied into `MetricSample.labels` (values cut at 256 characters)."""
    rules: list[Rule] = Field(default_factory=lambda: list(DEFAULT_RULES))
    """Mapping rules, applied together; two rules writing one field: the later present one wins."""
    lookback_seconds: float = Field(default=300.0, gt=0)
    """A series' last input counts for this long (PromQL's default look-back is 5 minutes)."""
    max_body_bytes: int = Field(default=8 * 1024 * 1024, ge=1024)
    """Largest compressed request body; larger ones get 413."""
    max_decoded_bytes: int = Field(default=32 * 1024 * 1024, ge=1024)
    """Largest uncompressed WriteRequest (checked before decompressing); larger ones get 413."""
    max_samples_per_request: int = Field(default=50_000, ge=1)
    """Most series + samples in one request (413 above: mapping runs on the event loop, and
    Prometheus sends at most `max_samples_per_send`, 2,000 by default, per request)."""
    max_future_seconds: float = Field(default=600.0, ge=0)
    """Samples stamped further ahead of the receiver's clock are rejected (absurd timestamp)."""
    max_age_seconds: float = Field(default=365 * 86400.0, gt=0)
    """Samples older than this are rejected (the history TTL drops them anyway)."""
    max_dead_letters_per_request: int = Field(default=200, ge=1)
    """Dead letters written for one request (one per series and reason); the rest are counted."""
    source: str = Field(default="prometheus", min_length=1, max_length=256)
    """`source` of the MetricSamples."""

    @field_validator("id_labels", "copy_labels")
    @classmethod
    def _label_names(cls, value: list[str]) -> list[str]:
        bad = [v for v in value if not _LABEL_NAME.match(v)]
        if bad:
            raise ValueError(f"not Prometheus label names: {bad}")
        return value


RESERVED_VARIABLES = frozenset(
    {"runbook", "resource_id", "action_id", "action_type", "decision_id", "dry_run"}
)
"""Variables the executor sets itself; a route may not map labels onto them."""


class LabelVariable(BaseModel):
    """One runbook variable taken from an alert label."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    label: str
    """Alert label to read."""
    type: Literal["string", "integer", "number"] = "string"
    """The value is converted to this type; a label that does not convert rejects the alert."""
    default: str | int | float | None = None
    """Used when the label is absent; None: the label is required."""
    max_length: int = Field(default=256, ge=1, le=4096)
    """Longest accepted string value."""


class AlertRoute(BaseModel):
    """Alert name (+ label regexes) → runbook and its variables; the runbook is never taken from
    the alert itself."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    alertname: str = Field(min_length=1)
    """Value of the alert's `alertname` label."""
    match: dict[str, str] = Field(default_factory=dict)
    """Further label → regex (full match) conditions."""
    runbook: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.-]+$")
    """Runbook id to run (from this configuration only)."""
    resource_labels: list[str] = Field(default_factory=lambda: ["instance", "service", "job"])
    """Labels holding the resource id, first present wins."""
    variables: dict[str, LabelVariable] = Field(default_factory=dict)
    """Runbook variable → the label it comes from."""
    constants: dict[str, str | int | float | bool] = Field(default_factory=dict)
    """Fixed variables of the route."""
    requires_approval: bool = False
    """Ask a person before the runbook runs, whatever the policies say."""

    @field_validator("match")
    @classmethod
    def _regexes(cls, value: dict[str, str]) -> dict[str, str]:
        for label, pattern in value.items():
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"label {label!r}: invalid regex {pattern!r}: {exc}") from None
        return value

    @model_validator(mode="after")
    def _variable_names(self) -> AlertRoute:
        names = set(self.variables) | set(self.constants)
        bad = sorted(n for n in names if not _LABEL_NAME.match(n) or n in RESERVED_VARIABLES)
        if bad:
            raise ValueError(f"route {self.alertname}: variables {bad} are reserved or invalid")
        return self

    def matches(self, labels: dict[str, str]) -> bool:
        """Whether this route takes an alert with these labels."""
        if labels.get("alertname") != self.alertname:
            return False
        return all(re.fullmatch(p, labels.get(k, "")) for k, p in self.match.items())


class AlertsConfig(BaseModel):
    """The Alertmanager webhook receiver."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    routes: list[AlertRoute] = Field(default_factory=list)
    """Routes, first match wins; alerts no route takes are counted and ignored."""
    max_open: int = Field(default=10_000, ge=1)
    """Open alerts remembered (oldest forgotten first); a forgotten one that repeats produces
    the same decision id again, which the executor runs at most once."""
    max_body_bytes: int = Field(default=1024 * 1024, ge=1024)
    """Largest accepted webhook body; larger ones get 413."""
    source: str = Field(default="alertmanager", min_length=1, max_length=256)
    """`source` of the decisions and resolution records."""


class CollectorConfig(BaseModel):
    """Everything the `collect` role is told (env `NOVACRON_COLLECT__…` or the config file)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    remote_write: RemoteWriteConfig = Field(default_factory=RemoteWriteConfig)
    """Prometheus remote-write receiver."""
    alerts: AlertsConfig = Field(default_factory=AlertsConfig)
    """Alertmanager webhook receiver."""
    bearer_token_sha256: list[str] = Field(default_factory=list)
    """SHA-256 hex of accepted bearer tokens; empty: no authentication (bind to loopback)."""
    kafka_timeout_seconds: float = Field(default=10.0, gt=0)
    """How long a request waits for Kafka's acknowledgements before answering 503."""
