"""What defines a simulated world: services, capacity, physics, faults, demand and its seed."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, Field

__all__ = ["SimConfig"]


class SimConfig(BaseModel):
    """Everything that defines a simulated world; the same config and seed give the same world."""

    seed: int = 7
    """Seed of every random stream (demand, hosts, drift, ids)."""
    services: int = Field(default=3, ge=1, le=100)
    """Number of services (decision units), named svc-0, svc-1, …"""
    initial_vms: int = Field(default=2, ge=0)
    """VMs per service at the start (already booted)."""
    min_vms: int = Field(default=1, ge=0)
    """Lower bound of VMs per service: scale_down below it fails."""
    max_vms: int = Field(default=20, ge=1)
    """Upper bound of VMs per service: scale_up above it fails."""
    interval_seconds: float = Field(default=60.0, gt=0)
    """Simulated seconds per tick."""
    vm_capacity_rps: float = Field(default=100.0, gt=0)
    """Requests per second one healthy VM serves at 100 % utilisation."""
    vm_boot_ticks: int = Field(default=2, ge=0)
    """Ticks a new VM boots (billed, not serving) before it joins the load balancer."""
    cost_per_vm_hour: float = Field(default=0.10, gt=0)
    """Cost of one VM for one hour."""
    trace: str = "synthetic"
    """ "synthetic" (diurnal + bursts) or a CSV path (NAB: timestamp,value) scaled to demand and
    resampled to the tick by its timestamps (a 5-minute row spans 5 ticks of 60 s)."""
    trace_max_gap: float = Field(default=3.0, gt=1)
    """A CSV gap longer than this many median row intervals is cut out of the trace (the next
    row follows one median interval later); shorter gaps are interpolated."""
    drift_probability: float = Field(default=0.01, ge=0, le=1)
    """Per service per tick: a hand-made configuration drift is injected."""
    violation_probability: float = Field(default=0.005, ge=0, le=1)
    """Per service per tick: a compliance violation is injected."""
    start_time: datetime = datetime(2026, 1, 5, tzinfo=UTC)
    """Simulated time of the first tick (UTC)."""
    trace_offset: int = Field(default=0, ge=0)
    """Row of the trace the first tick reads (services are spread evenly from there)."""
    synthetic_days: int = Field(default=7, ge=1)
    """Length of a synthetic trace in days (it repeats after that)."""
    peak_demand_fraction: float = Field(default=0.6, gt=0)
    """The trace's 99th percentile becomes this share of max_vms × vm_capacity_rps."""
    base_latency_ms: float = Field(default=50.0, gt=0)
    """Latency of an idle VM; latency = base / (1 - utilisation), capped."""
    max_latency_ms: float = Field(default=2000.0, gt=0)
    """Latency cap (timeouts) when a VM is saturated."""
    hosts: int = Field(default=6, ge=1)
    """Physical hosts the VMs are spread over."""
    hot_host_probability: float = Field(default=0.0002, ge=0, le=1)
    """Per host per tick: a noisy neighbour makes the host hot for a while."""
    hot_efficiency: float = Field(default=0.55, gt=0, le=1)
    """Capacity share a VM keeps on a hot host."""
    migration_ticks: int = Field(default=1, ge=1)
    """Ticks a live migration takes (VM degraded and billed twice meanwhile)."""
    migration_efficiency: float = Field(default=0.7, gt=0, le=1)
    """Capacity share a VM keeps while it migrates."""
    imbalance_drift: float = Field(default=0.01, ge=0)
    """Per-tick noise of the load balancer's weights (mean-reverting), evened by rebalance_load."""
    cache_load_reduction: float = Field(default=0.3, ge=0, lt=1)
    """Share of demand a warm cache serves (enable_feature)."""
    cache_warmup_ticks: int = Field(default=3, ge=1)
    """Ticks the cache needs to warm up to its full hit ratio."""
    cache_cost_per_hour: float = Field(default=0.15, ge=0)
    """Cost rate of the cache while enabled."""
    throttle_utilisation: float = Field(default=0.85, gt=0, le=1)
    """adjust_policy: requests above this share of capacity are rejected (fast) while throttled."""
    throttle_ticks: int = Field(default=10, ge=1)
    """How long one adjust_policy throttles."""
    config_every_ticks: int = Field(default=60, ge=0)
    """Ticks between full config snapshots (0: only creations, drift and violations)."""

    @classmethod
    def autoscaling(cls, **overrides: Any) -> SimConfig:
        """One service and no configuration events: the world of autoscaling training and
        benchmarks (drift and compliance would only add noise there). The trace's p99 is 35 %
        of max_vms' capacity, so static provisioning for its peak (2 × p99 at most, at 70 %
        utilisation: the SLO's 80 % less a margin) fits within max_vms."""
        return cls(**{"services": 1, "drift_probability": 0.0, "violation_probability": 0.0,
                      "config_every_ticks": 0, "peak_demand_fraction": 0.35, **overrides})
