"""Run controllers on the simulator and score them: SLO violations, VM-hours, reward, actions."""

from __future__ import annotations

import math

from pydantic import BaseModel

from agents.simulator.controllers import Controller
from agents.simulator.world import SimConfig, World
from models.dqn.reward import RewardConfig, reward, slo_violated

__all__ = ["STATIC_MARGIN", "EpisodeStats", "peak_vms", "run_episode"]


class EpisodeStats(BaseModel):
    """How one controller did on one world."""

    controller: str
    """Controller name."""
    ticks: int
    """Service-ticks simulated."""
    slo_violation_pct: float
    """Share of service-ticks violating the SLO, percent."""
    vm_hours: float
    """Billed VM-hours (booting and migrating VMs included)."""
    cost: float
    """Total cost including the cache."""
    total_reward: float
    """Sum of the reward (models/dqn/reward.py)."""
    actions: int
    """Actions taken (flapping shows here)."""
    mean_latency_ms: float
    """Mean latency."""


STATIC_MARGIN = 0.125
"""Share of the SLO's utilisation a static fleet keeps free at peak: enough to ride out a hot
host (a sixth of the VMs at 55 %) and the balancer's drift. A fleet sized to run exactly at the
SLO's breaking point (ρ = 1 − base/SLO) at peak violates on every wobble of the balancer."""


def peak_vms(config: SimConfig, slo_latency_ms: float, ticks: int,
             margin: float = STATIC_MARGIN) -> int:
    """VMs that meet the latency SLO at the episode's peak demand with `margin` to spare (the
    static-provisioning oracle)."""
    world = World(config.model_copy(update={"drift_probability": 0, "violation_probability": 0}))
    peak = max(state.demand_at(t) for state in world.services.values() for t in range(ticks))
    # latency = base / (1 - ρ) ≤ SLO  ⇔  ρ ≤ 1 - base / SLO
    rho = max(0.05, (1.0 - config.base_latency_ms / slo_latency_ms) * (1.0 - margin))
    needed = math.ceil(peak / (config.vm_capacity_rps * rho))
    return min(config.max_vms, max(config.min_vms, needed))


def run_episode(config: SimConfig, controller: Controller, ticks: int,
                reward_config: RewardConfig | None = None) -> EpisodeStats:
    """Simulate `ticks` ticks with the controller acting on every service sample."""
    rc = reward_config or RewardConfig(cost_per_vm_hour=config.cost_per_vm_hour)
    world = World(config)
    hours = config.interval_seconds / 3600.0
    violations = count = actions = 0
    vm_hours = cost = total = latency = 0.0
    for _ in range(ticks):
        tick = world.step()
        for sample in tick.metrics:
            action = controller.act(sample, tick.time)
            acted = action is not None and action.action_type != "no_action"
            count += 1
            violations += slo_violated(sample, rc)
            vm_hours += sample.extra.get("billed_vms", 0.0) * hours
            cost += (sample.cost_per_hour or 0.0) * hours
            total += reward(sample, rc, acted)
            latency += sample.network_latency_ms or 0.0
            if action is not None:
                actions += int(acted)
                controller.feedback(world.apply(action))
    return EpisodeStats(controller=controller.name, ticks=count,
                        slo_violation_pct=round(100.0 * violations / max(count, 1), 3),
                        vm_hours=round(vm_hours, 3), cost=round(cost, 3),
                        total_reward=round(total, 3), actions=actions,
                        mean_latency_ms=round(latency / max(count, 1), 2))
