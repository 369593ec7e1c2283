"""The verdict on an online-trained model candidate: promoted or rejected, with the evidence."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field

from schemas.edge import Float, Int
from schemas.envelope import Event

__all__ = ["ModelPromotion"]


class ModelPromotion(Event):
    """One shadow evaluation of a candidate against the deployed model (topic `promotions`).

    Online training fine-tunes the deployed model; every candidate it publishes is replayed
    beside the deployed one on recent demand, in the simulator, under the same safety limits.
    `promoted`: it met the SLO budget at no higher cost and was saved as `candidate`, a new
    checkpoint version that now runs (`novacron model rollback` undoes it); `rejected`: it did
    not, or the evaluation failed (fail closed), and the deployed model keeps running.
    """

    event_type = "ModelPromotion"
    topic = "promotions"

    model: str = Field(default="dqn", min_length=1, max_length=64)
    """Which model (the Kafka key)."""
    status: Literal["promoted", "rejected"]
    """promoted: the candidate runs now; rejected: the deployed model keeps running."""
    candidate: str = Field(min_length=1, max_length=128)
    """The candidate: the checkpoint version it was saved as when promoted, else
    `<base>+<grad steps>` (trained from `base_version` for that many steps, not saved)."""
    base_version: str = Field(default="", max_length=128)
    """The checkpoint the candidate's training started from (weights and config)."""
    deployed_version: str = Field(default="", max_length=128)
    """The model running when the candidate was judged (what it was compared with)."""
    grad_steps: Int = Field(default=0, ge=0)
    """Gradient steps of online training behind the candidate."""
    candidate_violation_pct: Float | None = Field(default=None, ge=0, le=100)
    """Worst service's share of SLO-violating ticks under the candidate, percent (None: the
    evaluation did not get that far)."""
    deployed_violation_pct: Float | None = Field(default=None, ge=0, le=100)
    """The same for the deployed model, on the same demand."""
    candidate_cost: Float | None = Field(default=None, ge=0)
    """Total cost under the candidate over the evaluated window (VMs and cache)."""
    deployed_cost: Float | None = Field(default=None, ge=0)
    """Total cost under the deployed model over the same window."""
    budget_pct: Float = Field(ge=0, le=100)
    """The SLO's violation budget the candidate was held to, percent of ticks."""
    slo_latency_ms: Float = Field(default=0.0, ge=0)
    """The SLO's latency objective the violations were counted against."""
    services: Int = Field(default=0, ge=0)
    """Services whose recent demand was replayed."""
    ticks: Int = Field(default=0, ge=0)
    """Simulated ticks per model (all services)."""
    window_start: datetime | None = None
    """Time of the oldest sample of the replayed window."""
    window_end: datetime | None = None
    """Time of the newest sample of the replayed window."""
    reason: str = Field(min_length=1, max_length=2048)
    """Why it was promoted or rejected, in words."""

    @property
    def key(self) -> str:
        return self.model
