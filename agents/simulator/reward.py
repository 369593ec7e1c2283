"""The reward: SLO attainment versus cost, defined once for the simulator, trainer and engine.

For one service and one tick (one MetricSample, plus whether an action was taken):

    reward = - violation_penalty      if the SLO is violated (latency or error rate over target)
             - error_weight × error_rate
             - cost_weight × cost_per_hour / cost_per_vm_hour     (cost in VM-equivalents)
             - action_penalty          if an action other than no_action was taken (anti-flapping)

With the defaults one violated tick weighs as much as 40 VM-ticks, so the agent buys capacity
when it protects the SLO and sheds it when it does not.
"""

from __future__ import annotations

from pydantic import BaseModel, Field

from schemas import MetricSample

__all__ = ["RewardConfig", "reward", "slo_violated"]


class RewardConfig(BaseModel):
    """Weights of the reward and the SLO it measures attainment against."""

    slo_latency_ms: float = Field(default=250.0, gt=0)
    """Latency target: a tick whose latency exceeds it violates the SLO."""
    slo_error_rate: float = Field(default=0.01, ge=0, le=1)
    """Error-rate target: a tick whose error rate exceeds it violates the SLO."""
    violation_penalty: float = Field(default=1.0, ge=0)
    """Penalty for one service-tick in violation of the SLO."""
    error_weight: float = Field(default=2.0, ge=0)
    """Extra penalty per unit of error rate (graded, so worse overload costs more)."""
    cost_weight: float = Field(default=0.025, ge=0)
    """Penalty per VM-equivalent of cost rate per tick."""
    cost_per_vm_hour: float = Field(default=0.10, gt=0)
    """Cost of one VM-hour, to express cost in VM-equivalents."""
    action_penalty: float = Field(default=0.03, ge=0)
    """Penalty per action other than no_action, against flapping."""


def slo_violated(sample: MetricSample, config: RewardConfig) -> bool:
    """Whether the sample misses the latency or the error-rate target (missing is not a miss)."""
    latency = sample.network_latency_ms
    errors = sample.error_rate
    return (latency is not None and latency > config.slo_latency_ms) or (
        errors is not None and errors > config.slo_error_rate
    )


def reward(sample: MetricSample, config: RewardConfig, acted: bool = False) -> float:
    """The reward of one service-tick (see the module docstring)."""
    value = -config.violation_penalty if slo_violated(sample, config) else 0.0
    value -= config.error_weight * (sample.error_rate or 0.0)
    value -= config.cost_weight * (sample.cost_per_hour or 0.0) / config.cost_per_vm_hour
    return value - (config.action_penalty if acted else 0.0)
