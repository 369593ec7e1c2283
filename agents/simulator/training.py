"""Train the decision engine's DQN on the simulator (torch is imported only when training runs)."""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from pydantic import BaseModel, Field

from agents.decision import DecisionConfig, DecisionEngine
from agents.simulator.constrained import BudgetJudge, LagrangeConfig, Multiplier, SplitReplay
from agents.simulator.controllers import DQNController
from agents.simulator.evaluate import run_episode
from agents.simulator.world import SimConfig, World
from models.dqn.config import DQNConfig
from models.dqn.features import FeatureConfig
from models.dqn.policy import QPolicy
from models.dqn.reward import slo_violated
from models.dqn.safety import ACTION_INDEX, SafetyConfig
from models.dqn.tracking import BudgetTracking

if TYPE_CHECKING:
    from models.dqn.trainer import DQNTrainer

__all__ = ["NStep", "TrainConfig", "TrainResult", "ValidationScore", "train"]

Transition = tuple[np.ndarray, int, Any, np.ndarray, bool, np.ndarray]
"""(s, a, r, s', done, mask); r is a float, or with a split replay the pair (reward without
violations, violated ticks) as an array, which n-step folding sums alike."""


TRAIN_LOAD_QUANTILE = 0.7
"""Demand quantile of the load feature while training. Deployment uses FeatureConfig's default
(the median): a model trained at the median learns to compensate with earlier, larger scale-ups
and lands at the lavish end again, while one trained at 0.7 and run at the median is more frugal
at a modest SLO cost (docs/decisions.md, "Operating point")."""


TRAIN_OVERLOAD_CPU = 90.0
"""CPU threshold of the overload guard while training (deployment: SafetyConfig's, 80 %). With
the guard acting from 90 % the network itself meets, and pays for, the mild overload between 80
and 90 %; model v0003 was trained so, and retraining it with the guard at 80 % gave a model that
beat the HPA curve on 4 validation traces instead of 14 (docs/decisions.md)."""


def _training_decision() -> DecisionConfig:
    # No budget tracking while training: the network learns its own answer to the budget, the
    # tracker is the deployment's correction of it (v0004 was trained and selected so).
    features = FeatureConfig(load_quantile=TRAIN_LOAD_QUANTILE,
                             budget_tracking=BudgetTracking(rate=0.0))
    return DecisionConfig(features=features,
                          safety=SafetyConfig(overload_cpu=TRAIN_OVERLOAD_CPU))


class TrainConfig(BaseModel):
    """One training run: which worlds, how long, and the engine being trained."""

    episodes: int = Field(default=60, ge=1)
    """Episodes to run."""
    episode_ticks: int = Field(default=1440, ge=10)
    """Ticks per episode (a simulated day at 60 s per tick)."""
    traces: list[str] = Field(default_factory=lambda: ["synthetic"])
    """Demand traces, cycled over episodes (each episode starts at a random row)."""
    sim: SimConfig = Field(default_factory=SimConfig.autoscaling)
    """The world (trace, seed and offset are set per episode)."""
    dqn: DQNConfig = Field(default_factory=lambda: DQNConfig(eps_decay_steps=40_000))
    """Hyper-parameters of the network and the learner."""
    decision: DecisionConfig = Field(default_factory=_training_decision)
    """The engine being trained (features, safety, sizing, reward); its confidence gate is off
    while exploring and on during validation, as in production."""
    train_every: int = Field(default=1, ge=1)
    """Environment steps between gradient steps."""
    sync_every: int = Field(default=250, ge=1)
    """Environment steps between copies of the torch weights into the numpy policy."""
    guide_share: float = Field(default=0.3, ge=0, le=1)
    """Share of exploratory picks that follow the sizing rule (scale toward the target
    utilisation) instead of a random allowed action: off-policy data from a sane behaviour
    shows the learner what keeping capacity in line with demand is worth."""
    validate_every: int = Field(default=10, ge=0)
    """Episodes between greedy validation runs (0: none; the last weights are kept)."""
    validation_trace: str | None = None
    """Trace of the validation run (a training trace, never an evaluation one); default the
    first CSV of `traces`, else synthetic."""
    validation_ticks: int = Field(default=4000, ge=10)
    """Ticks of a validation run."""
    select_by: Literal["reward", "hpa_curve", "budget"] = "hpa_curve"
    """How validation ranks weights: "reward" is the total reward on the validation trace;
    "hpa_curve" runs the engine at its deployment quantile on every CSV training trace and
    counts those on which it beats the whole HPA curve (total reward breaks ties; without a CSV
    trace, "reward"; see agents/simulator/selection.py); "budget" (with `lagrange`) counts the
    CSV training traces on which the engine meets the budget, fewer VM-hours breaking ties."""
    lagrange: LagrangeConfig | None = None
    """Train against an SLO budget (agents/simulator/constrained.py): the violation penalty is a
    multiplier adapted at each validation run; None: the reward's fixed penalty."""
    judge_tracking: bool = False
    """With "budget" selection: judge (the multiplier's steps and the ranking) with budget
    tracking on at its defaults, so λ is adapted to the engine as it runs by default (tracking
    makes up for part of the network's misses); False: the network alone (v0004)."""
    demand_scale: tuple[float, float] = (0.3, 0.9)
    """Range of each episode's demand scale (the trace's p99 as a share of max_vms' capacity;
    the autoscaling world's benchmark uses 0.35)."""
    seed: int = 0
    """Seed of the episode schedule (traces, offsets, demand scale)."""


class ValidationScore(BaseModel):
    """How the weights after one episode did in validation."""

    episode: int
    reward: float
    """Total reward of the greedy, gated engine (summed over the traces with "hpa_curve")."""
    beats_hpa: int | None = None
    """Traces on which the HPA curve was beaten ("hpa_curve" selection only)."""
    met: int | None = None
    """Traces on which the budget was met ("budget" selection only)."""
    violation_pct: list[float] = Field(default_factory=list)
    """Violation share per training trace ("budget" selection only)."""
    vm_hours: float | None = None
    """VM-hours over the training traces ("budget" selection only)."""
    multiplier: float | None = None
    """λ after this run's dual-ascent step (with `lagrange`)."""

    def rank(self) -> tuple[float, float]:
        """Sort key: budget met (then fewer VM-hours), or HPA-curve wins (then reward)."""
        if self.met is not None:
            return (self.met, -(self.vm_hours or 0.0))
        return (self.beats_hpa or 0, self.reward)


class TrainResult(BaseModel):
    """What a training run produced."""

    weights: dict[str, Any]
    """Exported numpy weights (w0, b0, …): the best validated ones when validating."""
    episode_rewards: list[float]
    """Total reward per episode."""
    env_steps: int
    """Environment steps."""
    first_time: datetime
    """First simulated time trained on."""
    last_time: datetime
    """Last simulated time trained on."""
    validation: list[ValidationScore] = Field(default_factory=list)
    """One score per validation run."""
    best_episode: int | None = None
    """Episode after which the kept weights were validated (None without validation)."""


class NStep:
    """Folds consecutive transitions of one service into n-step ones: Σ γ^k r_k, s_{t+n}."""

    def __init__(self, n: int, gamma: float) -> None:
        self.n, self.gamma = n, gamma
        self.queue: deque[Transition] = deque()

    def push(self, transition: Transition) -> list[Transition]:
        """Add the next transition; returns the n-step transitions now complete."""
        self.queue.append(transition)
        if len(self.queue) < self.n:
            return []
        out = [self._fold()]
        self.queue.popleft()
        return out

    def flush(self) -> list[Transition]:
        """At the end of an episode: the shorter tails are dropped (their discount would differ)."""
        self.queue.clear()
        return []

    def _fold(self) -> Transition:
        first, last = self.queue[0], self.queue[-1]
        total = sum(self.gamma ** k * t[2] for k, t in enumerate(self.queue))
        return first[0], first[1], total, last[3], last[4], last[5]


class _Epsilon:
    """ε-greedy exploration that only proposes allowed actions: half of the time no_action,
    `guide_share` of the rest the sizing rule, else a random allowed action.

    Uniform exploration over eight actions acts on ~7 of 8 ticks: the world is then mostly
    wrecked by random scale-downs and the rate limit. Favouring no_action explores the
    states a sane controller actually visits.
    """

    def __init__(self, trainer: DQNTrainer, engine: DecisionEngine, guide_share: float,
                 no_action_share: float = 0.5) -> None:
        self.trainer, self.engine = trainer, engine
        self.guide_share, self.no_action_share = guide_share, no_action_share

    def pick(self, mask: np.ndarray) -> int | None:
        self.trainer.env_steps += 1
        rng = self.trainer.rng
        if rng.random() >= self.trainer.epsilon:
            return None
        if rng.random() < self.no_action_share:
            return 0
        if rng.random() < self.guide_share:
            return self._guide(mask)
        others = np.flatnonzero(mask[1:]) + 1
        return 0 if others.size == 0 else int(rng.choice(others))

    def _guide(self, mask: np.ndarray) -> int:
        """Scale toward the VMs that put the demand level at the target utilisation."""
        windows = self.engine.states.windows
        if len(windows) != 1:
            return 0
        state = next(iter(windows.values())).last_state
        cfg = self.engine.config
        low, high = cfg.safety.min_vms, cfg.safety.max_vms
        vms = low + float(state[5]) * max(1, high - low)
        need = math.ceil(max(vms, 1.0) * float(state[3]) / cfg.impact.target_utilisation)
        if need > round(vms) and mask[ACTION_INDEX["scale_up"]]:
            return ACTION_INDEX["scale_up"]
        if need < round(vms) and mask[ACTION_INDEX["scale_down"]]:
            return ACTION_INDEX["scale_down"]
        return 0


def _episode_world(cfg: TrainConfig, episode: int, rng: np.random.Generator) -> World:
    trace = cfg.traces[episode % len(cfg.traces)]
    sim = cfg.sim.model_copy(update={
        "trace": trace, "seed": cfg.sim.seed + 1000 * episode,
        "trace_offset": int(rng.integers(0, 20_000)),
        "peak_demand_fraction": float(rng.uniform(*cfg.demand_scale)),
        "initial_vms": int(rng.integers(1, 8)),
    })
    return World(sim)


def _run_episode(world: World, engine: DecisionEngine, trainer: DQNTrainer, cfg: TrainConfig
                 ) -> float:
    controller = DQNController(engine)
    folder = NStep(cfg.dqn.n_step, cfg.dqn.gamma)
    split = cfg.lagrange is not None
    total = 0.0
    for _ in range(cfg.episode_ticks):
        tick = world.step()
        for sample in tick.metrics:
            action = controller.act(sample, tick.time)
            for closed in engine.take_transitions():
                total += closed[2]
                transition: Transition = closed
                if split:  # the sample that closed it says whether it violated the SLO
                    violated = float(slo_violated(sample, engine.config.reward))
                    total -= violated  # shown at the reward's unit penalty
                    transition = (closed[0], closed[1], np.array([closed[2], violated]),
                                  *closed[3:])
                for folded in folder.push(transition):
                    trainer.push(*folded)
            if action is not None:
                controller.feedback(world.apply(action))
        if trainer.env_steps % cfg.train_every == 0:
            trainer.train_steps(1)
        if trainer.env_steps % cfg.sync_every == 0:
            engine.load_policy(QPolicy(trainer.export_weights(), "training"))
    folder.flush()
    return total


def validation_score(cfg: TrainConfig, weights: dict[str, np.ndarray]) -> float:
    """Total reward of the greedy, confidence-gated engine on the validation trace."""
    trace = cfg.validation_trace or next((t for t in cfg.traces if t != "synthetic"),
                                         "synthetic")
    sim = cfg.sim.model_copy(update={"trace": trace, "seed": cfg.sim.seed + 1})
    engine = DecisionEngine(cfg.decision, QPolicy(weights, "validation"))
    stats = run_episode(sim, DQNController(engine), cfg.validation_ticks, cfg.decision.reward)
    return stats.total_reward


def _scorer(cfg: TrainConfig) -> Callable[[int, dict[str, np.ndarray]], ValidationScore]:
    """Validation by the configured rule (see TrainConfig.select_by)."""
    csvs = [t for t in cfg.traces if t != "synthetic"]
    if cfg.select_by == "budget" and csvs:
        return _budget_scorer(cfg, csvs)
    if cfg.select_by == "reward" or not csvs:
        return lambda episode, weights: ValidationScore(
            episode=episode, reward=round(validation_score(cfg, weights), 3))
    from agents.simulator.selection import CurveJudge

    worlds = [cfg.sim.model_copy(update={"trace": t, "seed": cfg.sim.seed + 1}) for t in csvs]
    judge = CurveJudge(worlds, cfg.validation_ticks, cfg.decision)

    def score(episode: int, weights: dict[str, np.ndarray]) -> ValidationScore:
        wins, total = judge.score(weights)
        return ValidationScore(episode=episode, reward=total, beats_hpa=wins)

    return score


def _budget_scorer(cfg: TrainConfig, csvs: list[str]
                   ) -> Callable[[int, dict[str, np.ndarray]], ValidationScore]:
    worlds = [cfg.sim.model_copy(update={"trace": t, "seed": cfg.sim.seed + 1}) for t in csvs]
    judge = BudgetJudge(worlds, cfg.validation_ticks, cfg.decision,
                        BudgetTracking() if cfg.judge_tracking else None)
    budget = cfg.lagrange.budget_pct if cfg.lagrange else cfg.decision.features.slo_budget_pct

    def score(episode: int, weights: dict[str, np.ndarray]) -> ValidationScore:
        violations, hours = judge.score(weights)
        return ValidationScore(episode=episode, reward=0.0, violation_pct=violations,
                               met=sum(v <= budget for v in violations), vm_hours=hours)

    return score


def _constrain(cfg: TrainConfig, trainer: DQNTrainer) -> Multiplier | None:
    """With `lagrange`: the engine trains for its budget, the violation part of the reward goes
    to a split replay priced by the multiplier (the engine's own penalty is zeroed meanwhile)."""
    if cfg.lagrange is None:
        return None
    multiplier = Multiplier(cfg.lagrange)
    cfg.decision.features.slo_budget_pct = cfg.lagrange.budget_pct
    cfg.decision.features.budget_reference_pct = cfg.lagrange.budget_pct
    cfg.decision.reward.violation_penalty = 0.0
    c = trainer.config
    trainer.buffer = SplitReplay(c.buffer_size, c.layers[0], c.layers[-1], c.seed, multiplier)
    return multiplier


def train(cfg: TrainConfig, initial: dict[str, np.ndarray] | None = None,
          progress: Callable[[int, float], None] | None = None) -> TrainResult:
    """Train from scratch (or from `initial` weights); `progress(episode, reward)` per episode."""
    from models.dqn.trainer import DQNTrainer  # torch stays out of processes that only decide

    trainer = DQNTrainer(cfg.dqn, initial)
    multiplier = _constrain(cfg, trainer)
    engine = DecisionEngine(cfg.decision, QPolicy(trainer.export_weights(), "training"))
    engine.explorer = _Epsilon(trainer, engine, cfg.guide_share)
    rng = np.random.default_rng(cfg.seed)
    rewards: list[float] = []
    validation: list[ValidationScore] = []
    best: tuple[ValidationScore, dict[str, np.ndarray]] | None = None
    scorer = _scorer(cfg)
    first = last = cfg.sim.start_time
    for episode in range(cfg.episodes):
        world = _episode_world(cfg, episode, rng)
        engine.reset()  # each episode's clock starts again: old cooldowns would block it
        rewards.append(_run_episode(world, engine, trainer, cfg))
        last = max(last, world.now)
        if cfg.validate_every and ((episode + 1) % cfg.validate_every == 0
                                   or episode + 1 == cfg.episodes):
            weights = trainer.export_weights()
            validation.append(scorer(episode, weights))
            if multiplier is not None:
                validation[-1].multiplier = round(multiplier.update(validation[-1].violation_pct),
                                                  4)
            if best is None or validation[-1].rank() > best[0].rank():
                best = (validation[-1], weights)
        if progress is not None:
            progress(episode, rewards[-1])
    if multiplier is not None:  # the engine learns online with the price it was trained at
        cfg.decision.reward.violation_penalty = round(multiplier.value, 4)
    return TrainResult(weights=best[1] if best else trainer.export_weights(),
                       episode_rewards=rewards, env_steps=trainer.env_steps, first_time=first,
                       last_time=last, validation=validation,
                       best_episode=best[0].episode if best else None)
