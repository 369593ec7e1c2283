"""Training against an SLO budget: a Lagrange multiplier on violations, adapted to the budget."""

from __future__ import annotations

import math

import numpy as np
from pydantic import BaseModel, Field

from agents.decision import DecisionConfig, DecisionEngine
from agents.simulator.benchmark import deployed_config
from agents.simulator.controllers import DQNController
from agents.simulator.evaluate import run_episode
from agents.simulator.world import SimConfig
from models.dqn.policy import QPolicy
from models.dqn.replay import ReplayBuffer
from models.dqn.tracking import BudgetTracking

__all__ = ["BudgetJudge", "LagrangeConfig", "Multiplier", "SplitReplay"]


class LagrangeConfig(BaseModel):
    """The constrained objective: minimise cost subject to violations ≤ budget.

    The reward is the usual one with its violation penalty replaced by a multiplier λ (the
    Lagrange multiplier of the budget constraint). Every validation run measures the greedy
    engine's violation share on each training trace and moves λ by dual ascent: up when the
    `quantile` of those shares is over the budget, down when under.
    """

    budget_pct: float = Field(default=2.0, gt=0, le=100)
    """The violation budget trained for, percent of ticks (the model's reference budget)."""
    initial: float = Field(default=3.0, gt=0)
    """λ at the start: 3 × the reward's default penalty, a violated tick as dear as ~43 VM-ticks
    (the lavish end of the HPA curve, where budgets of a few percent are met)."""
    step: float = Field(default=0.3, gt=0)
    """Dual-ascent step on log λ per validation run, for a relative miss of 1 (clipped to ±1)."""
    low: float = Field(default=0.2, gt=0)
    """Lower bound of λ."""
    high: float = Field(default=30.0, gt=0)
    """Upper bound of λ."""
    quantile: float = Field(default=0.8, ge=0, le=1)
    """Which training trace's violation share must meet the budget (0.8: all but the worst
    fifth), since the goal is meeting it on most traces, not on average."""


class Multiplier:
    """λ, the price of one violated tick in the reward, adapted to the budget."""

    def __init__(self, config: LagrangeConfig) -> None:
        self.config = config
        self.value = config.initial

    def update(self, violation_pct: list[float]) -> float:
        """One dual-ascent step from the violation shares (percent) of a validation run."""
        if not violation_pct:
            return self.value
        c = self.config
        measured = float(np.quantile(violation_pct, c.quantile))
        miss = max(-1.0, min(1.0, (measured - c.budget_pct) / c.budget_pct))
        self.value = min(c.high, max(c.low, self.value * math.exp(c.step * miss)))
        return self.value


class SplitReplay(ReplayBuffer):
    """Replay that keeps the violation part of each reward apart and prices it with the current
    λ when sampled: stored transitions stay consistent with the multiplier as it moves."""

    def __init__(self, capacity: int, n_features: int, n_actions: int, seed: int,
                 multiplier: Multiplier) -> None:
        super().__init__(capacity, n_features, n_actions, seed)
        self.violations = np.zeros(capacity, dtype=np.float32)
        self.multiplier = multiplier

    def push(self, state: np.ndarray, action: int, reward: float | np.ndarray,
             next_state: np.ndarray, done: bool = False,
             next_mask: np.ndarray | None = None) -> None:
        """`reward` is (the reward without violations, the discounted violated ticks)."""
        rest, violated = (float(reward[0]), float(reward[1])) if isinstance(
            reward, np.ndarray) else (float(reward), 0.0)
        self.violations[self.cursor] = violated
        super().push(state, action, rest, next_state, done, next_mask)

    def sample(self, batch_size: int) -> tuple[np.ndarray, ...]:
        idx = self.rng.integers(0, self.size, size=batch_size)
        rewards = self.rewards[idx] - np.float32(self.multiplier.value) * self.violations[idx]
        return (self.states[idx], self.actions[idx], rewards, self.next_states[idx],
                self.dones[idx], self.next_masks[idx])


class BudgetJudge:
    """Scores weights on the training traces at the deployed operating point (load quantile)
    under the training safety limits, at the reference budget, with `tracking` (default the
    training's: off): per trace the violation share and VM-hours. Ranking: traces meeting the
    budget, then fewer VM-hours."""

    def __init__(self, worlds: list[SimConfig], ticks: int, trained: DecisionConfig,
                 tracking: BudgetTracking | None = None) -> None:
        self.worlds, self.ticks = worlds, ticks
        self.decision = deployed_config(trained.model_dump(), safety=trained.safety,
                                        tracking=tracking or trained.features.budget_tracking)
        self.decision.features.slo_budget_pct = trained.features.slo_budget_pct

    def score(self, weights: dict[str, np.ndarray]) -> tuple[list[float], float]:
        """(violation percent per trace, total VM-hours)."""
        violations, hours = [], 0.0
        for world in self.worlds:
            engine = DecisionEngine(self.decision, QPolicy(weights, "validation"))
            stats = run_episode(world, DQNController(engine), self.ticks, self.decision.reward)
            violations.append(stats.slo_violation_pct)
            hours += stats.vm_hours
        return violations, round(hours, 3)
