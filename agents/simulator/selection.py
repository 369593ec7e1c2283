"""Choosing among a training run's validated weights by the product's goal: beat the HPA curve."""

from __future__ import annotations

import numpy as np

from agents.decision import DecisionConfig, DecisionEngine
from agents.simulator.benchmark import BenchmarkConfig, baseline_rows, deployed_config, verdict
from agents.simulator.controllers import DQNController
from agents.simulator.evaluate import EpisodeStats, run_episode
from agents.simulator.world import SimConfig
from models.dqn.policy import QPolicy

__all__ = ["CurveJudge"]


class CurveJudge:
    """Scores weights on a run's training traces at the deployed operating point (load
    quantile) under the safety limits trained with: on how many the engine beats the whole HPA
    curve, then its total reward over them.

    Total reward on one trace ranks checkpoints by what the network optimises; this ranks them
    by what a user asks of it, on several traces, so one lucky trace does not pick the model.
    The HPA rows are computed once per trace and reused for every checkpoint.
    """

    def __init__(self, worlds: list[SimConfig], ticks: int, trained: DecisionConfig) -> None:
        self.worlds, self.ticks = worlds, ticks
        # The training safety limits keep a run's choice reproducible when the deployment's
        # change (v0003 was selected with the guard at 90 %).
        self.decision = deployed_config(trained.model_dump(), safety=trained.safety,
                                        tracking=trained.features.budget_tracking)
        self._rivals: list[list[EpisodeStats]] | None = None

    def rivals(self) -> list[list[EpisodeStats]]:
        """The baseline rows of each world (computed on first use)."""
        if self._rivals is None:
            # the verdict reads the HPA rows only: no predictive runs here
            self._rivals = [baseline_rows(BenchmarkConfig(sim=w, ticks=self.ticks, predictive=[]),
                                          self.ticks, self.decision.reward) for w in self.worlds]
        return self._rivals

    def score(self, weights: dict[str, np.ndarray]) -> tuple[int, float]:
        """(traces on which the HPA curve is beaten, total reward over all traces)."""
        wins, total = 0, 0.0
        for world, rows in zip(self.worlds, self.rivals(), strict=True):
            engine = DecisionEngine(self.decision, QPolicy(weights, "validation"))
            dqn = run_episode(world, DQNController(engine), self.ticks, self.decision.reward)
            wins += bool(verdict([*rows, dqn])[0])
            total += dqn.total_reward
        return wins, round(total, 3)
