"""The reward: SLO attainment versus cost, defined once for the simulator, trainer and engine.

For one service and one tick (one MetricSample, plus whether an action was taken):

    reward = - violation_penalty      if the SLO is violated (latency or error rate over target)
             - error_weight × error_rate
             - cost_weight × cost_per_hour / cost_per_vm_hour     (cost in VM-equivalents)
             - action_penalty          if an action other than no_action was taken (anti-flapping)

With the defaults one violated tick weighs as much as ~14 VM-ticks (1 / 0.07). That is about the
marginal price of a violation on the HPA trade-off curve near its frugal end on real (NAB) demand
(going from 30 % to 12 % violations costs 10–18 VM-ticks per avoided violated tick), so the
agent is asked to buy capacity only where it protects the SLO cheaply. The older 40 VM-ticks
pushed the optimum to the lavish end of the curve, where no controller can be 10 % cheaper than
the frugal HPA settings. The graded error term is small (0.5) so deep overload still costs more
than a marginal violation without dominating; the action penalty (0.05, a VM for ~45 s) is the
price of churn: a scale step that is undone a few ticks later does not pay.
"""

from __future__ import annotations

from pydantic import BaseModel, Field

from models.slo import violates
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
    error_weight: float = Field(default=0.5, ge=0)
    """Extra penalty per unit of error rate (graded, so worse overload costs more)."""
    cost_weight: float = Field(default=0.07, ge=0)
    """Penalty per VM-equivalent of cost rate per tick."""
    cost_per_vm_hour: float = Field(default=0.10, gt=0)
    """Cost of one VM-hour, to express cost in VM-equivalents."""
    action_penalty: float = Field(default=0.05, ge=0)
    """Penalty per action other than no_action, against flapping."""


def slo_violated(sample: MetricSample, config: RewardConfig) -> bool:
    """Whether the sample misses the latency or the error-rate target (missing is not a miss)."""
    return violates(sample.network_latency_ms, sample.error_rate, config.slo_latency_ms,
                    config.slo_error_rate)


def reward(sample: MetricSample, config: RewardConfig, acted: bool = False) -> float:
    """The reward of one service-tick (see the module docstring)."""
    value = -config.violation_penalty if slo_violated(sample, config) else 0.0
    value -= config.error_weight * (sample.error_rate or 0.0)
    value -= config.cost_weight * (sample.cost_per_hour or 0.0) / config.cost_per_vm_hour
    return value - (config.action_penalty if acted else 0.0)
