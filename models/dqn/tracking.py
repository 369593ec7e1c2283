"""Error-budget tracking: each service's realised violation share sets how loaded it looks.

A network trained for one budget on a handful of traces meets it on traces like those and
misses it elsewhere: on spiky demand it reacts too late, on smooth demand it keeps more headroom
than the budget needs. An SRE burns the error budget on purpose; the tracker does the same, per
service, online. It keeps a multiplier of the state's request-rate feature and moves it after
every sample: up by `rate × (1 − aim)` in log space after a sample that violates the SLO, down
by `rate × aim` after one that meets it, where `aim` is the share of ticks it aims to violate
(`share` of the budget), within [`min_factor`, `max_factor`]. Where the bounds do not bind, the
violated share settles at `aim`: the multiplier is a Lagrange multiplier of the budget
constraint, learnt per service by dual ascent on the live signal instead of once, in training,
for the training traces (docs/decisions.md).
"""

from __future__ import annotations

import math
from typing import NamedTuple

from pydantic import BaseModel, Field

from models.slo import SLOConfig, violates

__all__ = ["BudgetTracking", "TrackingSteps"]


class TrackingSteps(NamedTuple):
    """The tracker's numbers as plain floats, computed once (it runs on every sample)."""

    up: float
    """Factor applied to the multiplier after a violating sample."""
    down: float
    """Factor applied after a sample that meets the SLO."""
    low: float
    high: float
    latency_ms: float
    error_rate: float
    hold: float
    """Multiplier at or above which scale-downs are held."""

    def next(self, pressure: float, latency_ms: float | None, error_rate: float | None) -> float:
        """The multiplier after one more sample (missing metrics are not a violation)."""
        violated = violates(latency_ms, error_rate, self.latency_ms, self.error_rate)
        pressure *= self.up if violated else self.down
        return self.high if pressure > self.high else self.low if pressure < self.low else pressure


class BudgetTracking(BaseModel):
    """How the engine spends the SLO's violation budget per service (see the module doc)."""

    rate: float = Field(default=0.05, ge=0, le=1)
    """Step of the log-multiplier per sample; 0 turns tracking off. At 0.05 and a 2 % budget a
    violated minute raises the multiplier by ~5 % and a quiet day (1,440 minutes) lowers it by
    ~64 % (e^−1.0), down to its floor."""
    share: float = Field(default=0.7, gt=0, le=1)
    """Share of the budget the tracker aims to use: violations come in bursts, and aiming below
    the budget leaves a margin for the burst that comes before the multiplier has risen."""
    min_factor: float = Field(default=1.0, gt=0, le=1)
    """Lowest multiplier. 1 by default: the tracker only adds headroom where the budget burns.
    Below 1 it would also spend an unused budget, but v0004 answers demand that looks lower
    than it is by flapping (on validation: 10× the actions and more VM-hours, not fewer)."""
    max_factor: float = Field(default=4.0, ge=1)
    """Highest multiplier (the feature is capped at 3 whatever it is)."""
    hold_scale_down_at: float = Field(default=3.0, ge=1)
    """While a service's multiplier is at or above this, scale-down is masked ("error budget
    burning"). Past it the request-rate feature is near its cap, so the network cannot be shown
    more pressure, and a scale-down spends budget the service no longer has. Chosen on the
    validation traces (docs/decisions.md, "Holding scale-downs"); above `max_factor` it never
    holds."""
    latency_ms: float = Field(default=250.0, gt=0)
    """Latency objective a sample is judged by (the SLO's; copied from it where the engine is
    built)."""
    error_rate: float = Field(default=0.01, ge=0, le=1)
    """Error-rate objective a sample is judged by (the SLO's)."""

    def judged_by(self, slo: SLOConfig) -> BudgetTracking:
        """This tracking, judging samples by the user's SLO."""
        return self.model_copy(update={"latency_ms": slo.latency_ms, "error_rate": slo.error_rate})

    def steps(self, budget_pct: float) -> TrackingSteps | None:
        """The per-sample numbers for a budget in percent (None when tracking is off)."""
        if self.rate == 0:
            return None
        aim = budget_pct / 100.0 * self.share
        return TrackingSteps(math.exp(self.rate * (1.0 - aim)), math.exp(-self.rate * aim),
                             self.min_factor, self.max_factor, self.latency_ms, self.error_rate,
                             self.hold_scale_down_at)

