"""The autoscaling benchmark: static at peak, the HPA sweep, predictive scaling and the DQN."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, Field

from agents.decision import DecisionConfig, DecisionEngine
from agents.simulator.controllers import (
    DQNController,
    HPAController,
    PredictiveController,
    StaticController,
)
from agents.simulator.evaluate import EpisodeStats, peak_vms, run_episode
from agents.simulator.world import SimConfig
from models.dqn.features import FeatureConfig
from models.dqn.policy import QPolicy
from models.dqn.reward import RewardConfig
from models.dqn.safety import SafetyConfig
from models.dqn.tracking import BudgetTracking
from models.slo import SLOConfig

__all__ = ["BenchmarkConfig", "BenchmarkResult", "baseline_rows", "compare", "deployed_config",
           "dqn_row", "episode_ticks", "verdict"]


class BenchmarkConfig(BaseModel):
    """One comparison: the world, how long, and which HPA targets."""

    sim: SimConfig = Field(default_factory=SimConfig.autoscaling)
    """World (its trace and seed are what every controller sees)."""
    ticks: int | None = Field(default=None, ge=1)
    """Ticks to simulate (default: the whole trace, or 7 days for synthetic)."""
    hpa_targets: list[float] = Field(
        default_factory=lambda: [round(0.1 * k, 1) for k in range(1, 10)])
    """Target utilisations of the HPA rule (10–90 % in steps of 10)."""
    predictive: list[tuple[float, float]] = Field(
        default_factory=lambda: [(0.5, 0.6), (0.5, 0.8), (0.9, 0.6), (0.9, 0.8)])
    """Settings of the predictive scaler: (forecast demand quantile, target utilisation)."""
    predictive_horizon: int | None = Field(default=None, ge=1)
    """Ticks ahead the predictive scaler forecasts (default: VM boot ticks + 1)."""
    hpa_tolerance: float = Field(default=0.1, ge=0)
    """HPA tolerance around the target."""
    hpa_stabilisation_seconds: float = Field(default=300.0, ge=0)
    """HPA scale-down stabilisation window."""


class BenchmarkResult(BaseModel):
    """Rows of the comparison and whether the DQN beats the whole HPA curve."""

    trace: str
    seed: int
    ticks: int
    rows: list[EpisodeStats]
    dqn_beats_hpa_curve: bool | None
    """True when the DQN uses ≥ 10 % fewer VM-hours than every HPA setting whose SLO-violation
    rate is no lower than the DQN's, and there is at least one (None without a DQN row)."""
    vm_hours_saving_pct: dict[str, float]
    """For those HPA settings: the DQN's VM-hour saving, percent."""
    load_quantile: float | None = None
    """The demand quantile the DQN provisioned for (its operating point; None without a DQN)."""


def deployed_config(trained: dict[str, Any], load_quantile: float | None = None,
                    safety: SafetyConfig | None = None, budget_pct: float | None = None,
                    budget_exponent: float | None = None,
                    tracking: BudgetTracking | None = None) -> DecisionConfig:
    """The engine config a model runs with: the one it was trained with (from its checkpoint
    metadata, the budget it was trained for included) at the deployed operating point
    (`load_quantile`, default FeatureConfig's), for the deployment's SLO budget (`budget_pct`,
    default SLOConfig's) with the deployment's `budget_exponent` (default FeatureConfig's),
    under the deployment's safety limits (`safety`, default SafetyConfig's) and budget tracking
    (`tracking`, default FeatureConfig's), not the training's."""
    config = DecisionConfig.model_validate(trained)
    config.safety = safety or SafetyConfig()
    defaults = FeatureConfig()
    quantile = defaults.load_quantile if load_quantile is None else load_quantile
    config.features.load_quantile = quantile
    config.features.slo_budget_pct = SLOConfig().budget_pct if budget_pct is None else budget_pct
    config.features.budget_exponent = (defaults.budget_exponent if budget_exponent is None
                                       else budget_exponent)
    config.features.budget_tracking = (tracking or defaults.budget_tracking).model_copy()
    return config


def episode_ticks(cfg: BenchmarkConfig) -> int:
    """Ticks of an episode: as configured, else the whole (resampled) trace or the synthetic
    days."""
    if cfg.ticks:
        return cfg.ticks
    if cfg.sim.trace == "synthetic":
        return int(86400 / cfg.sim.interval_seconds) * cfg.sim.synthetic_days
    from agents.simulator.demand import load_csv_trace

    return len(load_csv_trace(cfg.sim.trace, cfg.sim.interval_seconds, cfg.sim.trace_max_gap))


def verdict(rows: list[EpisodeStats]) -> tuple[bool | None, dict[str, float]]:
    """Whether the DQN row beats the whole HPA curve, and its VM-hour saving per HPA rival."""
    dqn = next((r for r in rows if r.controller == "dqn"), None)
    if dqn is None:
        return None, {}
    rivals = [r for r in rows if r.controller.startswith("hpa-")
              and r.slo_violation_pct >= dqn.slo_violation_pct]
    savings = {r.controller: round(100.0 * (1 - dqn.vm_hours / r.vm_hours), 2) for r in rivals}
    # No rival means the DQN violates the SLO more than every HPA setting: that is no win.
    return bool(savings) and all(s >= 10.0 for s in savings.values()), savings


def baseline_rows(cfg: BenchmarkConfig, ticks: int, rc: RewardConfig,
                  progress: Callable[[str], None] | None = None) -> list[EpisodeStats]:
    """Static provisioning at peak, the HPA rule at each target and the predictive scaler at
    each setting, on the config's world (same boot delay for all)."""
    sim = cfg.sim
    plans: list[tuple[SimConfig, Any]] = [
        (sim.model_copy(update={"initial_vms": peak_vms(sim, rc.slo_latency_ms, ticks)}),
         StaticController())]
    for target in cfg.hpa_targets:
        plans.append((sim, HPAController(target, sim.min_vms, sim.max_vms, sim.interval_seconds,
                                         cfg.hpa_tolerance, cfg.hpa_stabilisation_seconds)))
    horizon = cfg.predictive_horizon or sim.vm_boot_ticks + 1
    for quantile, target in cfg.predictive:
        plans.append((sim, PredictiveController(
            target, quantile, sim.vm_capacity_rps, sim.min_vms, sim.max_vms,
            sim.interval_seconds, horizon, cfg.hpa_stabilisation_seconds)))
    rows = []
    for world_config, controller in plans:
        if progress is not None:
            progress(controller.name)
        rows.append(run_episode(world_config, controller, ticks, rc))
    return rows


def dqn_row(sim: SimConfig, ticks: int, weights: dict[str, Any],
            decision: DecisionConfig | None, version: str | None, rc: RewardConfig,
            name: str = "dqn") -> EpisodeStats:
    """The decision engine with these weights on the world, scored like the rivals."""
    engine = DecisionEngine(decision, QPolicy(weights, version))
    return run_episode(sim, DQNController(engine, name), ticks, rc)


def compare(cfg: BenchmarkConfig, weights: dict[str, Any] | None,
            decision: DecisionConfig | None = None, version: str | None = None,
            progress: Callable[[str], None] | None = None,
            slo: SLOConfig | None = None) -> BenchmarkResult:
    """Run every controller on the same trace and seed and score them (violations against
    `slo` when given, else against the reward's SLO)."""
    sim, ticks = cfg.sim, episode_ticks(cfg)
    rc = (decision.reward if decision else RewardConfig(cost_per_vm_hour=sim.cost_per_vm_hour))
    if slo is not None:
        rc = rc.model_copy(update={"slo_latency_ms": slo.latency_ms,
                                   "slo_error_rate": slo.error_rate})
    rows = baseline_rows(cfg, ticks, rc, progress)
    if weights is not None:
        if progress is not None:
            progress("dqn")
        rows.append(dqn_row(sim, ticks, weights, decision, version, rc))
    beats, savings = verdict(rows)
    engine_config = decision or DecisionConfig()
    quantile = engine_config.features.load_quantile if weights is not None else None
    return BenchmarkResult(trace=sim.trace, seed=sim.seed, ticks=ticks, rows=rows,
                           dqn_beats_hpa_curve=beats, vm_hours_saving_pct=savings,
                           load_quantile=quantile)
