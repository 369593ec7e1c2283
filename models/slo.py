"""The service-level objective autoscaling is judged by: a latency objective and a budget."""

from __future__ import annotations

from pydantic import BaseModel, Field

__all__ = ["SLOConfig", "violates"]


class SLOConfig(BaseModel):
    """What users state (SPEC §8): e.g. p95 latency ≤ 250 ms on ≥ 99 % of minutes.

    A tick (a minute in the simulator) violates the objective when its latency percentile is
    above `latency_ms` or its error rate above `error_rate`; the objective is met over a period
    when the share of violating ticks is at most `budget_pct`. In the simulator the latency
    metric is the queueing model's per-tick latency and stands in for the percentile.
    """

    latency_percentile: float = Field(default=95.0, gt=0, lt=100)
    """Percentile of request latency the objective is about (95 → p95)."""
    latency_ms: float = Field(default=250.0, gt=0)
    """Latency objective: a tick whose latency percentile exceeds it violates the SLO."""
    error_rate: float = Field(default=0.01, ge=0, le=1)
    """Error-rate objective: a tick whose error rate exceeds it violates the SLO."""
    budget_pct: float = Field(default=1.0, ge=0, le=100)
    """Violation budget: the share of ticks, in percent, allowed to violate (1 → 99 % met)."""

    def met(self, violation_pct: float, budget_pct: float | None = None) -> bool:
        """Whether a violation share (percent of ticks) is within the budget."""
        return violation_pct <= (self.budget_pct if budget_pct is None else budget_pct)


def violates(latency_ms: float | None, error_rate: float | None, latency_objective: float,
             error_objective: float) -> bool:
    """Whether one tick misses the latency or the error-rate objective (missing is not a miss):
    the one definition the reward, the benchmarks and budget tracking count violations by."""
    return (latency_ms is not None and latency_ms > latency_objective) or (
        error_rate is not None and error_rate > error_objective)
