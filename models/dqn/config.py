"""Hyper-parameters of the DQN trainer (no torch here, so the CLI can show them cheaply)."""

from __future__ import annotations

from pydantic import BaseModel, Field

__all__ = ["DQNConfig"]


class DQNConfig(BaseModel):
    """DQN hyper-parameters; the defaults are those of SPEC §4.2."""

    layers: tuple[int, ...] = (9, 128, 128, 64, 8)
    """Network shape: inputs, hidden layers, actions."""
    gamma: float = Field(default=0.99, gt=0, le=1)
    """Discount factor."""
    lr: float = Field(default=1e-3, gt=0)
    """Adam learning rate."""
    batch_size: int = Field(default=64, ge=1)
    """Transitions per gradient step."""
    buffer_size: int = Field(default=100_000, ge=100)
    """Replay buffer capacity."""
    warmup: int = Field(default=1_000, ge=0)
    """Transitions collected before the first gradient step."""
    eps_start: float = Field(default=1.0, ge=0, le=1)
    """Initial exploration rate of ε-greedy."""
    eps_end: float = Field(default=0.05, ge=0, le=1)
    """Final exploration rate."""
    eps_decay_steps: int = Field(default=50_000, ge=1)
    """Environment steps over which ε decays linearly."""
    target_update_every: int = Field(default=500, ge=1)
    """Gradient steps between target-network syncs (hard update)."""
    n_step: int = Field(default=1, ge=1, le=10)
    """Steps folded into each stored reward (the feeder sums them): the bootstrap discount is
    gamma ** n_step. n > 1 carries a scale-up's payoff back over the VM's boot delay."""
    double: bool = True
    """Double DQN: the online net picks the next action, the target net values it."""
    grad_clip: float = Field(default=10.0, gt=0)
    """Gradient-norm clip."""
    seed: int = 0
    """Seed of torch, the replay sampling and exploration."""
    threads: int = Field(default=1, ge=1, le=8)
    """torch intra-op threads (the machine is shared: 1 by default)."""
