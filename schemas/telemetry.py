"""Inbound events: metric samples, config changes, declared baselines and policy versions."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from schemas.edge import Bool, Float, FloatMap, Identifier, Int, JsonObject, StrMap
from schemas.envelope import Event

__all__ = ["ConfigChange", "DesiredState", "MetricSample", "PolicyVersion"]

ShortStr = Field(min_length=1, max_length=256)


class MetricSample(Event):
    """One telemetry sample of a resource; producers send partial samples (missing is not zero)."""

    event_type = "MetricSample"
    topic = "metrics"

    resource_id: Identifier = Field(min_length=1, max_length=256)
    """Resource the sample describes (host, VM, service or scaling group id); the Kafka key."""
    resource_type: Identifier = Field(default="vm", max_length=64)
    """Kind of resource: vm, host, service, …"""
    cluster: Identifier = Field(default="default", max_length=128)
    """Cluster or scaling group the resource belongs to."""
    cpu_usage: Float | None = Field(default=None, ge=0, le=100)
    """CPU utilisation in percent (0–100)."""
    memory_usage: Float | None = Field(default=None, ge=0, le=100)
    """Memory utilisation in percent (0–100)."""
    network_latency_ms: Float | None = Field(default=None, ge=0)
    """Request or network latency in milliseconds."""
    request_rate: Float | None = Field(default=None, ge=0)
    """Requests per second."""
    error_rate: Float | None = Field(default=None, ge=0, le=1)
    """Share of failed requests (0–1)."""
    active_vms: Int | None = Field(default=None, ge=0)
    """VMs serving the resource (for services and scaling groups)."""
    cost_per_hour: Float | None = Field(default=None, ge=0)
    """Current cost rate in currency units per hour."""
    labels: StrMap = Field(default_factory=dict)
    """Free-form string labels (region, tier, …)."""
    extra: FloatMap = Field(default_factory=dict)
    """Additional numeric metrics by name."""


class ConfigChange(Event):
    """A configuration change of a resource: the full snapshot after the change."""

    event_type = "ConfigChange"
    topic = "config"

    resource_id: Identifier = Field(min_length=1, max_length=512)
    """Resource id (a Terraform address such as `aws_s3_bucket.logs` is fine)."""
    resource_type: Identifier = Field(min_length=1, max_length=128)
    """Terraform-style type: aws_s3_bucket, kubernetes_deployment, novacron_vm, …"""
    provider: Identifier = Field(default="novacron", max_length=64)
    """Provider that owns the resource: aws, gcp, azure, kubernetes, novacron."""
    op: Literal["create", "update", "delete"] = "update"
    """What happened to the resource."""
    change_source: Identifier = Field(default="api", max_length=64)
    """Where the change came from: terraform, api, console, gitops, agent, …"""
    actor: Identifier = Field(default="unknown", max_length=256)
    """Who made the change."""
    config: JsonObject = Field(default_factory=dict)
    """The full configuration snapshot after the change (arbitrary JSON object)."""
    before: JsonObject | None = None
    """The snapshot before the change, when the source knows it (`collect terraform` does)."""


class DesiredState(Event):
    """The declared baseline of a resource (compacted topic: the latest one per resource wins)."""

    event_type = "DesiredState"
    topic = "desired"
    latest_wins = True

    resource_id: Identifier = Field(min_length=1, max_length=512)
    """Resource the baseline is for."""
    resource_type: Identifier = Field(min_length=1, max_length=128)
    """Terraform-style resource type."""
    config: JsonObject = Field(default_factory=dict)
    """The declared configuration."""
    origin: Literal["api", "git", "terraform", "accepted-drift"] = "api"
    """Where the baseline came from."""
    revision: Identifier | None = Field(default=None, max_length=128)
    """Git commit or Terraform serial the baseline was taken from."""
    author: Identifier = Field(default="unknown", max_length=256)
    """Who declared it."""
    deleted: Bool = False
    """True when the baseline was withdrawn."""


class PolicyVersion(Event):
    """One version of a Rego policy in the registry (compacted topic keyed by policy id)."""

    event_type = "PolicyVersion"
    topic = "policies"
    latest_wins = True

    policy_id: Identifier = Field(min_length=1, max_length=128)
    """Stable policy id (the Kafka key)."""
    name: Identifier = Field(default="", max_length=256)
    """Human-readable name."""
    policy_type: Identifier = Field(default="access", max_length=64)
    """access, resource_allocation, compliance, security, network, data_governance, safety."""
    version: Int = Field(default=1, ge=1)
    """Monotonic version number within the policy."""
    rego: str = Field(default="", max_length=1_000_000)
    """The Rego module source."""
    content_hash: Identifier = Field(default="", max_length=128)
    """SHA-256 of the Rego source."""
    enforcement: Literal["block", "warn", "audit"] = "block"
    """What a violation does: block (deny wins), warn (allow with reasons), audit (record only)."""
    enabled: Bool = True
    """Disabled policies are kept but not evaluated."""
    author: Identifier = Field(default="unknown", max_length=256)
    """Who made this version."""
    signature: Identifier | None = Field(default=None, max_length=512)
    """Optional ed25519 signature of the content hash (hex)."""
    change: Identifier = Field(default="register", max_length=32)
    """register, update, enable, disable, rollback."""

    @property
    def key(self) -> str:
        return self.policy_id
