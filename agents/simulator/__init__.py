"""The simulated world: services, VMs and hosts on an accelerated clock (SPEC §4.9)."""

from __future__ import annotations

from agents.simulator.world import SimConfig, Tick, World
from models.dqn.reward import RewardConfig, reward, slo_violated

__all__ = ["RewardConfig", "SimConfig", "Tick", "World", "reward", "slo_violated"]
