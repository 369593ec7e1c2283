"""Right-sizing, memory headroom, consolidation and cost recommendations from running statistics."""

from __future__ import annotations

import math
import pickle  # noqa: S403 - snapshots are our own model state, written and read by our workers
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, Field
from river import stats

__all__ = ["RecommendConfig", "Recommendation", "Recommender"]


class RecommendConfig(BaseModel):
    """Settings of the recommender."""

    cpu_target_low: float = Field(default=60.0, ge=0, le=100)
    """Lower edge of the CPU utilisation band to right-size toward (percent)."""
    cpu_target_high: float = Field(default=70.0, ge=0, le=100)
    """Upper edge of the CPU band (percent)."""
    memory_limit: float = Field(default=85.0, ge=0, le=100)
    """Memory p95 above this asks for more headroom (percent)."""
    idle_cpu: float = Field(default=10.0, ge=0, le=100)
    """CPU p95 below this marks the resource idle (a consolidation candidate)."""
    window: int = Field(default=288, ge=10)
    """Samples the utilisation quantiles are taken over (288 = a day of 5-minute samples)."""
    min_samples: int = Field(default=30, ge=1)
    """Samples before any recommendation (cold start recommends nothing)."""
    tolerance: float = Field(default=5.0, ge=0)
    """Percentage points outside the band before right-sizing is worth recommending."""


@dataclass(frozen=True)
class Recommendation:
    """A proposed change; `dry_run` unless the optimizer auto-applies it."""

    kind: str
    """rightsize_down, rightsize_up, memory_headroom or consolidate (cost savings in params)."""
    metric: str
    target: float
    estimated_improvement: float
    """Percent: cost saved (down-sizing, consolidation) or utilisation brought back into band."""
    confidence: float
    actions: list[str]
    decision_type: str
    """The executor action type that carries it out."""
    reason: str
    params: dict[str, float] = field(default_factory=dict)
    dry_run: bool = True


def _pct(x: float) -> float:
    return round(100.0 * x, 1)


class Recommender:
    """Per-resource recommendations from rolling utilisation quantiles (learn_one / predict_one)."""

    def __init__(self, config: RecommendConfig | None = None, seed: int = 0) -> None:
        self.config = config or RecommendConfig()
        self.seed = seed
        w = self.config.window
        self._cpu95 = stats.RollingQuantile(0.95, w)
        self._cpu_mean = stats.EWMean(2.0 / (w + 1))
        self._cpu_var = stats.EWVar(2.0 / (w + 1))
        self._mem95 = stats.RollingQuantile(0.95, w)
        self._cost = stats.EWMean(2.0 / (w + 1))
        self._vms: int | None = None
        self.n_cpu = 0
        self.n_mem = 0

    def learn_one(self, x: Mapping[str, float | None]) -> None:
        """Learn a (partial) sample: cpu_usage, memory_usage, cost_per_hour, active_vms keys."""
        cpu, mem, cost = x.get("cpu_usage"), x.get("memory_usage"), x.get("cost_per_hour")
        if cpu is not None:
            self._cpu95.update(cpu)
            self._cpu_mean.update(cpu)
            self._cpu_var.update(cpu)
            self.n_cpu += 1
        if mem is not None:
            self._mem95.update(mem)
            self.n_mem += 1
        if cost is not None:
            self._cost.update(cost)
        if x.get("active_vms") is not None:
            self._vms = int(x["active_vms"] or 0)

    def _confidence(self, n: int) -> float:
        # more history and a steadier load both make the estimate more trustworthy
        warm = n / (n + self.config.min_samples)
        mean = self._cpu_mean.get() or 0.0
        cv = math.sqrt(max(0.0, self._cpu_var.get() or 0.0)) / (mean + 1.0)  # EWVar can dip < 0
        return round(max(0.0, min(1.0, warm * (1.0 - min(cv, 1.0) / 2.0))), 3)

    def predict_one(self) -> list[Recommendation]:
        """Current recommendations (an empty list at cold start)."""
        out: list[Recommendation] = []
        if self.n_cpu >= self.config.min_samples:
            out.extend(self._cpu_recommendations())
        if self.n_mem >= self.config.min_samples:
            out.extend(self._memory_recommendations())
        return out

    def _cpu_recommendations(self) -> list[Recommendation]:
        c = self.config
        p95 = float(self._cpu95.get() or 0.0)
        conf = self._confidence(self.n_cpu)
        target = (c.cpu_target_low + c.cpu_target_high) / 2
        vms = self._vms or 1
        needed = max(1, math.ceil(vms * max(p95, 1.0) / target))
        cost = self._cost.get() or 0.0
        if p95 < c.idle_cpu:
            saving = 1.0 - 1.0 / vms if vms > 1 else 0.5
            return [Recommendation(
                "consolidate", "cpu_usage", p95, _pct(saving), conf,
                [f"consolidate {vms} VM(s) onto 1 (p95 CPU {p95:.1f}%)",
                 "migrate_vm to a shared host"],
                "migrate_vm", f"idle: p95 CPU {p95:.1f}% < {c.idle_cpu}%",
                {"from_vms": vms, "to_vms": 1, "cost_per_hour_saved": round(cost * saving, 4)},
            )]
        band = f"the {c.cpu_target_low}-{c.cpu_target_high}% band"
        if p95 < c.cpu_target_low - c.tolerance:
            saving = max(0.0, 1.0 - p95 / target)
            return [Recommendation(
                "rightsize_down", "cpu_usage", target, _pct(saving), conf,
                [f"scale down to {needed} VM(s) or a {_pct(1 - saving):.0f}% size class"],
                "scale_down", f"p95 CPU {p95:.1f}% below {band}",
                {"delta_vms": float(needed - vms), "cost_per_hour_saved": round(cost * saving, 4)},
            )]
        if p95 > c.cpu_target_high + c.tolerance:
            return [Recommendation(
                "rightsize_up", "cpu_usage", target, _pct(p95 / target - 1.0), conf,
                [f"scale up to {max(needed, vms + 1)} VM(s) to bring p95 CPU to ~{target:.0f}%"],
                "scale_up", f"p95 CPU {p95:.1f}% above {band}",
                {"delta_vms": float(max(needed, vms + 1) - vms)},
            )]
        return []

    def _memory_recommendations(self) -> list[Recommendation]:
        p95 = float(self._mem95.get() or 0.0)
        if p95 <= self.config.memory_limit:
            return []
        target = self.config.memory_limit - 10
        grow = p95 / target - 1.0
        return [Recommendation(
            "memory_headroom", "memory_usage", target, _pct(grow), self._confidence(self.n_mem),
            [f"increase memory by {_pct(grow):.0f}% to bring p95 to {target:.0f}%"],
            "apply_recommendation", f"p95 memory {p95:.1f}% > {self.config.memory_limit}%",
            {"memory_increase_pct": _pct(grow)},
        )]

    def snapshot(self) -> bytes:
        """The whole model state as bytes."""
        return pickle.dumps(self.__dict__, protocol=pickle.HIGHEST_PROTOCOL)

    @classmethod
    def restore(cls, blob: bytes) -> Recommender:
        """A recommender from `snapshot()` bytes."""
        model = cls.__new__(cls)
        state: dict[str, Any] = pickle.loads(blob)  # noqa: S301 - our own snapshot format
        model.__dict__.update(state)
        return model
