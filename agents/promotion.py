"""Safe online learning: replay recent demand through the deployed model and a candidate, judge."""

from __future__ import annotations

import threading
from collections import deque
from datetime import UTC, datetime
from pathlib import Path
from tempfile import TemporaryDirectory

import numpy as np
from pydantic import BaseModel, Field

from agents.decision import DecisionConfig, DecisionEngine, QFunction
from agents.simulator.controllers import DQNController
from agents.simulator.demand import load_csv_trace
from agents.simulator.evaluate import EpisodeStats, run_episode
from agents.simulator.world import SimConfig
from models.slo import SLOConfig
from schemas import MetricSample, ModelPromotion

__all__ = ["PolicyRun", "RecentDemand", "ShadowConfig", "ShadowEvaluator", "ShadowVerdict",
           "judge", "promotion_event"]

SOURCE = "novacron.decision"
Series = list[tuple[float, float]]


class ShadowConfig(BaseModel):
    """How a candidate is judged: which recent demand is replayed, in which world."""

    window_samples: int = Field(default=1_440, ge=10, le=100_000)
    """Most recent request-rate samples kept per service (1,440: a day of minutes)."""
    min_samples: int = Field(default=240, ge=10)
    """A service is replayed only with at least this many samples (no verdict on less)."""
    max_services: int = Field(default=4, ge=1, le=64)
    """Services replayed per evaluation: those with the most samples (bounds the CPU spent)."""
    interval_seconds: float = Field(default=60.0, gt=0)
    """Simulated seconds per tick (the window is resampled to it)."""
    seed: int = 7
    """Seed of the simulated world (hot hosts, balancer): the same for both models."""


class RecentDemand:
    """The last `window` (time, request rate) samples per service; safe across threads (the
    engine adds on the event path, the trainer thread snapshots)."""

    def __init__(self, window: int) -> None:
        self.window = window
        self._lock = threading.Lock()
        self._series: dict[str, deque[tuple[float, float]]] = {}

    def add(self, sample: MetricSample) -> None:
        if sample.request_rate is None:  # partial sample: missing is not zero
            return
        point = (sample.event_time.timestamp(), float(sample.request_rate))
        with self._lock:
            series = self._series.get(sample.resource_id)
            if series is None:
                series = self._series[sample.resource_id] = deque(maxlen=self.window)
            series.append(point)

    def forget(self, service: str) -> None:
        """The service moved to another worker: its history goes with it."""
        with self._lock:
            self._series.pop(service, None)

    def snapshot(self) -> dict[str, Series]:
        with self._lock:
            return {k: list(v) for k, v in self._series.items()}


class PolicyRun(BaseModel):
    """One model replayed on every selected service."""

    worst_violation_pct: float
    """Highest share of SLO-violating ticks over the services, percent."""
    cost: float
    """Total cost over all services."""
    vm_hours: float
    """Total VM-hours."""
    ticks: int
    """Simulated service-ticks."""

    @classmethod
    def of(cls, rows: list[EpisodeStats]) -> PolicyRun:
        return cls(worst_violation_pct=max(r.slo_violation_pct for r in rows),
                   cost=round(sum(r.cost for r in rows), 4),
                   vm_hours=round(sum(r.vm_hours for r in rows), 4),
                   ticks=sum(r.ticks for r in rows))


class ShadowVerdict(BaseModel):
    """Promote or not, why, and the evidence (None where the evaluation did not get to)."""

    promote: bool
    reason: str
    candidate: PolicyRun | None = None
    deployed: PolicyRun | None = None
    services: list[str] = Field(default_factory=list)
    window_start: datetime | None = None
    window_end: datetime | None = None


def judge(candidate: PolicyRun, deployed: PolicyRun, budget_pct: float) -> tuple[bool, str]:
    """The promotion rule (docs/decisions.md, *Safe online learning*): the candidate must meet
    the SLO budget on every replayed service, at a total cost no higher than the deployed
    model's on the same demand. Violating less is not enough, and being cheaper is not either."""
    if candidate.worst_violation_pct > budget_pct:
        return False, (f"misses the SLO budget: {candidate.worst_violation_pct:.2f}% of ticks "
                       f"violate on its worst service, budget {budget_pct:g}% (deployed: "
                       f"{deployed.worst_violation_pct:.2f}%)")
    if candidate.cost > deployed.cost:
        return False, (f"costs more: {candidate.cost:.2f} against the deployed model's "
                       f"{deployed.cost:.2f} on the same demand (violations "
                       f"{candidate.worst_violation_pct:.2f}% within the {budget_pct:g}% budget)")
    return True, (f"meets the SLO budget ({candidate.worst_violation_pct:.2f}% ≤ {budget_pct:g}% "
                  f"on its worst service; deployed {deployed.worst_violation_pct:.2f}%) at cost "
                  f"{candidate.cost:.2f} ≤ {deployed.cost:.2f}")


class ShadowEvaluator:
    """Replays recent per-service demand in the simulator through both models, same world, same
    seed, same engine config (so the same safety limits and sizing), and applies `judge`.

    The demand keeps its shape (and its level when `vm_capacity_rps` is configured); actuation,
    boot delay and cost are the simulator's. Any error is a rejection with its reason."""

    def __init__(self, config: ShadowConfig, slo: SLOConfig, decision: DecisionConfig) -> None:
        self.config, self.slo = config, slo
        self.decision = decision.model_copy(update={"shadow": False})

    def evaluate(self, deployed: QFunction, candidate: QFunction,
                 history: dict[str, Series]) -> ShadowVerdict:
        try:
            return self._evaluate(deployed, candidate, history)
        except Exception as exc:  # fail closed: no verdict is a rejection
            return ShadowVerdict(promote=False,
                                 reason=f"evaluation failed: {type(exc).__name__}: {exc}")

    def select(self, history: dict[str, Series]) -> dict[str, Series]:
        """The services with enough samples, most samples first (ties by name), bounded."""
        ready = [(k, v) for k, v in history.items() if len(v) >= self.config.min_samples]
        ready.sort(key=lambda kv: (-len(kv[1]), kv[0]))
        return dict(ready[: self.config.max_services])

    def _evaluate(self, deployed: QFunction, candidate: QFunction,
                  history: dict[str, Series]) -> ShadowVerdict:
        chosen = self.select(history)
        if not chosen:
            most = max((len(v) for v in history.values()), default=0)
            return ShadowVerdict(promote=False, reason=(
                f"not enough recent history: no service has {self.config.min_samples} samples "
                f"with a request rate (most: {most})"))
        with TemporaryDirectory(prefix="novacron-shadow-") as tmp:
            worlds = [self._world(Path(tmp), name, series) for name, series in chosen.items()]
            runs = {label: PolicyRun.of([self._run(policy, sim, ticks) for sim, ticks in worlds])
                    for label, policy in (("deployed", deployed), ("candidate", candidate))}
        promote, reason = judge(runs["candidate"], runs["deployed"], self.slo.budget_pct)
        times = [t for series in chosen.values() for t, _ in series]
        return ShadowVerdict(promote=promote, reason=reason, candidate=runs["candidate"],
                             deployed=runs["deployed"], services=sorted(chosen),
                             window_start=datetime.fromtimestamp(min(times), UTC),
                             window_end=datetime.fromtimestamp(max(times), UTC))

    def _world(self, folder: Path, name: str, series: Series) -> tuple[SimConfig, int]:
        path = folder / f"{len(list(folder.iterdir()))}.csv"
        rows = "".join(f"{datetime.fromtimestamp(t, UTC).isoformat()},{v!r}\n" for t, v in series)
        path.write_text("timestamp,value\n" + rows)
        d, cfg = self.decision, self.config
        overrides: dict[str, object] = {
            "trace": str(path), "seed": cfg.seed, "interval_seconds": cfg.interval_seconds,
            "min_vms": d.safety.min_vms, "max_vms": d.safety.max_vms,
            "cost_per_vm_hour": d.reward.cost_per_vm_hour}
        capacity = d.features.vm_capacity_rps
        if capacity:  # the demand's real level against the fleet's capacity
            p99 = float(np.quantile([v for _, v in series], 0.99))
            overrides["vm_capacity_rps"] = capacity
            overrides["peak_demand_fraction"] = max(p99 / (d.safety.max_vms * capacity), 1e-3)
        sim = SimConfig.autoscaling(**overrides)
        return sim, len(load_csv_trace(path, sim.interval_seconds, sim.trace_max_gap))

    def _run(self, policy: QFunction, sim: SimConfig, ticks: int) -> EpisodeStats:
        rc = self.decision.reward.model_copy(update={
            "slo_latency_ms": self.slo.latency_ms, "slo_error_rate": self.slo.error_rate,
            "cost_per_vm_hour": sim.cost_per_vm_hour})
        return run_episode(sim, DQNController(DecisionEngine(self.decision, policy)), ticks, rc)


def promotion_event(verdict: ShadowVerdict, *, candidate: str, base: str, deployed: str,
                    grad_steps: int, slo: SLOConfig, now: datetime | None = None
                    ) -> ModelPromotion:
    """The verdict as the `promotions` event that lands in ClickHouse (`model_promotions`)."""
    c, d = verdict.candidate, verdict.deployed
    extra = {} if now is None else {"event_time": now}
    return ModelPromotion(
        **extra, source=SOURCE, status="promoted" if verdict.promote else "rejected",
        candidate=candidate, base_version=base, deployed_version=deployed, grad_steps=grad_steps,
        candidate_violation_pct=None if c is None else c.worst_violation_pct,
        candidate_cost=None if c is None else c.cost,
        deployed_violation_pct=None if d is None else d.worst_violation_pct,
        deployed_cost=None if d is None else d.cost,
        budget_pct=slo.budget_pct, slo_latency_ms=slo.latency_ms, services=len(verdict.services),
        ticks=c.ticks if c else 0, window_start=verdict.window_start,
        window_end=verdict.window_end, reason=verdict.reason[:2048])
