"""One simulated service: its VMs, load balancer, cache and throttle, and the queueing model."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

__all__ = ["VM", "Measurement", "Physics", "ServiceState", "measure"]


@dataclass
class VM:
    """A VM of a service: where it runs and whether it is serving yet."""

    vm_id: str
    host: int
    boot_left: int = 0
    """Ticks until the VM has booted and joins the load balancer."""
    migrate_left: int = 0
    """Ticks until a live migration completes (degraded and billed twice meanwhile)."""
    log_weight: float = 0.0
    """Load-balancer weight (log); drifts over time, rebalance resets it."""
    target_host: int = -1
    """Host a migration moves the VM to."""

    @property
    def ready(self) -> bool:
        return self.boot_left == 0


@dataclass
class ServiceState:
    """Mutable state of one service."""

    name: str
    demand: np.ndarray
    """Demand per tick in requests/s (already scaled)."""
    offset: int = 0
    vms: list[VM] = field(default_factory=list)
    next_vm: int = 0
    cache_on: bool = False
    cache_age: int = 0
    throttle_left: int = 0
    rebalance_pending: bool = False
    load_boost: float = 1.0
    load_boost_left: int = 0
    cost_boost: float = 1.0
    cost_boost_left: int = 0

    def demand_at(self, tick: int) -> float:
        base = float(self.demand[(self.offset + tick) % len(self.demand)])
        return base * (self.load_boost if self.load_boost_left > 0 else 1.0)


@dataclass(frozen=True)
class Physics:
    """The constants of the world's service model (copied from SimConfig)."""

    vm_capacity_rps: float
    base_latency_ms: float
    max_latency_ms: float
    hot_efficiency: float
    migration_efficiency: float
    cache_load_reduction: float
    cache_warmup_ticks: int
    throttle_utilisation: float
    cost_per_vm_hour: float
    cache_cost_per_hour: float


@dataclass(frozen=True)
class Measurement:
    """What one tick of a service looked like."""

    demand_rps: float
    cpu: float
    memory: float
    latency_ms: float
    error_rate: float
    ready_vms: int
    billed_vms: int
    cost_per_hour: float
    imbalance: float
    hot_vms: int


_sum = np.add.reduce
"""`ndarray.sum` without its Python-level wrapper (the same reduction, so the same bits)."""


def _capacities(state: ServiceState, hot: Sequence[bool], physics: Physics) -> np.ndarray:
    # plain Python over the VMs: this runs for every service on every tick of every simulation
    capacity, hot_efficiency = physics.vm_capacity_rps, physics.hot_efficiency
    caps = []
    for vm in state.vms:
        if vm.boot_left:
            continue  # not ready
        efficiency = hot_efficiency if hot[vm.host] else 1.0
        if vm.migrate_left > 0:
            efficiency *= physics.migration_efficiency
        caps.append(capacity * efficiency)
    return np.asarray(caps, dtype=np.float64)


def _offered_load(state: ServiceState, demand: float, physics: Physics) -> float:
    if not state.cache_on:
        return demand
    # The cache warms up: its hit ratio grows linearly over the warm-up ticks.
    warm = min(1.0, (state.cache_age + 1) / max(1, physics.cache_warmup_ticks))
    return demand * (1.0 - physics.cache_load_reduction * warm)


def measure(state: ServiceState, tick: int, hot: Sequence[bool], physics: Physics) -> Measurement:
    """Serve one tick of demand with the ready VMs: latency, errors, utilisation and cost
    (`hot[h]`: host h is a noisy neighbour this tick)."""
    demand = state.demand_at(tick)
    load = _offered_load(state, demand, physics)
    caps = _capacities(state, hot, physics)
    billed = len(state.vms) + sum(vm.migrate_left > 0 for vm in state.vms)
    cache_cost = physics.cache_cost_per_hour if state.cache_on else 0.0
    cost = billed * physics.cost_per_vm_hour + cache_cost
    cost *= state.cost_boost if state.cost_boost_left > 0 else 1.0
    hot_vms = sum(1 for vm in state.vms if not vm.boot_left and hot[vm.host])
    if caps.size == 0 or load <= 0:
        down = caps.size == 0 and load > 0
        latency = physics.max_latency_ms if down else physics.base_latency_ms
        return Measurement(demand, 0.0, 30.0, latency, 1.0 if down else 0.0, int(caps.size),
                           billed, cost, 1.0, hot_vms)
    rejected = 0.0
    if state.throttle_left > 0:
        # Throttling rejects (fast) whatever exceeds the allowed share of capacity.
        allowed = physics.throttle_utilisation * float(_sum(caps))
        rejected = max(0.0, load - allowed)
        load -= rejected
    # A least-outstanding-requests balancer: shares follow capacity (a VM on a hot host gets
    # less), skewed by the weights' drift, which only rebalance_load evens.
    weights = np.exp([vm.log_weight for vm in state.vms if not vm.boot_left]) * caps
    shares = weights / _sum(weights)
    per_vm = load * shares
    rho = per_vm / caps
    served = np.minimum(per_vm, caps)
    # M/M/1-style queueing per VM: latency = base / (1 - ρ), steep as ρ → 1, capped.
    latency = np.minimum(physics.base_latency_ms / (1.0 - np.minimum(rho, 0.995)),
                         physics.max_latency_ms)
    served_total = _sum(served)
    latency_ms = float(_sum(served * latency) / max(served_total, 1e-9))
    errors = float(_sum(per_vm - served)) + rejected
    error_rate = min(1.0, errors / max(load + rejected, 1e-9))
    util = float(served_total / _sum(caps))
    memory = min(100.0, 30.0 + 45.0 * util + (12.0 if state.cache_on else 0.0))
    imbalance = float(rho.max() / max(float(_sum(rho)) / rho.size, 1e-9))  # = rho.mean()
    return Measurement(demand, 100.0 * util, memory, latency_ms, error_rate, int(caps.size), billed,
                       cost, imbalance, hot_vms)
