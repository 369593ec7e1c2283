"""Train the decision engine's DQN on the simulator (torch is imported only when training runs)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

import numpy as np
from pydantic import BaseModel, Field

from agents.decision import DecisionConfig, DecisionEngine
from agents.simulator.controllers import DQNController
from agents.simulator.world import SimConfig, World
from models.dqn.config import DQNConfig
from models.dqn.policy import QPolicy

if TYPE_CHECKING:
    from models.dqn.trainer import DQNTrainer

__all__ = ["TrainConfig", "TrainResult", "train"]


class TrainConfig(BaseModel):
    """One training run: which worlds, how long, and the engine being trained."""

    episodes: int = Field(default=60, ge=1)
    """Episodes to run."""
    episode_ticks: int = Field(default=1440, ge=10)
    """Ticks per episode (a simulated day at 60 s per tick)."""
    traces: list[str] = Field(default_factory=lambda: ["synthetic"])
    """Demand traces, cycled over episodes (each episode starts at a random row)."""
    sim: SimConfig = Field(default_factory=lambda: SimConfig(
        services=1, drift_probability=0.0, violation_probability=0.0, config_every_ticks=0))
    """The world (trace, seed and offset are set per episode)."""
    dqn: DQNConfig = Field(default_factory=lambda: DQNConfig(eps_decay_steps=40_000))
    """Hyper-parameters of the network and the learner."""
    decision: DecisionConfig = Field(default_factory=lambda: DecisionConfig(min_confidence=0.0))
    """The engine being trained (features, safety, sizing, reward)."""
    train_every: int = Field(default=1, ge=1)
    """Environment steps between gradient steps."""
    sync_every: int = Field(default=250, ge=1)
    """Environment steps between copies of the torch weights into the numpy policy."""
    seed: int = 0
    """Seed of the episode schedule (traces, offsets, demand scale)."""


class TrainResult(BaseModel):
    """What a training run produced."""

    weights: dict[str, Any]
    """Exported numpy weights (w0, b0, …)."""
    episode_rewards: list[float]
    """Total reward per episode."""
    env_steps: int
    """Environment steps."""
    first_time: datetime
    """First simulated time trained on."""
    last_time: datetime
    """Last simulated time trained on."""


class _Epsilon:
    """ε-greedy exploration that only proposes allowed actions, half of the time no_action.

    Uniform exploration over eight actions acts on ~7 of 8 ticks: the world is then mostly
    wrecked by random scale-downs and the rate limit. Favouring no_action explores the
    states a sane controller actually visits.
    """

    def __init__(self, trainer: DQNTrainer, no_action_share: float = 0.5) -> None:
        self.trainer = trainer
        self.no_action_share = no_action_share

    def pick(self, mask: np.ndarray) -> int | None:
        self.trainer.env_steps += 1
        rng = self.trainer.rng
        if rng.random() >= self.trainer.epsilon:
            return None
        others = np.flatnonzero(mask[1:]) + 1
        if others.size == 0 or rng.random() < self.no_action_share:
            return 0
        return int(rng.choice(others))


def _episode_world(cfg: TrainConfig, episode: int, rng: np.random.Generator) -> World:
    trace = cfg.traces[episode % len(cfg.traces)]
    sim = cfg.sim.model_copy(update={
        "trace": trace, "seed": cfg.sim.seed + 1000 * episode,
        "trace_offset": int(rng.integers(0, 20_000)),
        "peak_demand_fraction": float(rng.uniform(0.3, 0.9)),
        "initial_vms": int(rng.integers(1, 8)),
    })
    return World(sim)


def _run_episode(world: World, engine: DecisionEngine, trainer: DQNTrainer, cfg: TrainConfig
                 ) -> float:
    controller = DQNController(engine)
    total = 0.0
    for _ in range(cfg.episode_ticks):
        tick = world.step()
        for sample in tick.metrics:
            action = controller.act(sample, tick.time)
            for transition in engine.take_transitions():
                trainer.push(*transition)
                total += transition[2]
            if action is not None:
                controller.feedback(world.apply(action))
        if trainer.env_steps % cfg.train_every == 0:
            trainer.train_steps(1)
        if trainer.env_steps % cfg.sync_every == 0:
            engine.load_policy(QPolicy(trainer.export_weights(), "training"))
    return total


def train(cfg: TrainConfig, initial: dict[str, np.ndarray] | None = None,
          progress: Callable[[int, float], None] | None = None) -> TrainResult:
    """Train from scratch (or from `initial` weights); `progress(episode, reward)` per episode."""
    from models.dqn.trainer import DQNTrainer  # torch stays out of processes that only decide

    trainer = DQNTrainer(cfg.dqn, initial)
    engine = DecisionEngine(cfg.decision, QPolicy(trainer.export_weights(), "training"))
    engine.explorer = _Epsilon(trainer)
    rng = np.random.default_rng(cfg.seed)
    rewards: list[float] = []
    first = last = cfg.sim.start_time
    for episode in range(cfg.episodes):
        world = _episode_world(cfg, episode, rng)
        engine.reset()  # each episode's clock starts again: old cooldowns would block it
        rewards.append(_run_episode(world, engine, trainer, cfg))
        last = max(last, world.now)
        if progress is not None:
            progress(episode, rewards[-1])
    return TrainResult(weights=trainer.export_weights(), episode_rewards=rewards,
                       env_steps=trainer.env_steps, first_time=first, last_time=last)
