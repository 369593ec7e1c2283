"""Sizing, expected impact and readable reasoning of a DQN decision (pure functions)."""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np
from pydantic import BaseModel, Field

from schemas import DQN_ACTIONS, MetricSample

__all__ = ["ImpactModel", "expected_impact", "impact_met", "observed", "reasoning", "scale_delta"]


class ImpactModel(BaseModel):
    """What the engine assumes about the world when it sizes and explains an action."""

    target_utilisation: float = Field(default=0.75, gt=0, lt=1)
    """scale_up / scale_down size the step to bring the demand level (the request-rate feature,
    a high quantile of the recent rate) to this utilisation: one action closes the gap."""
    trend_weight: float = Field(default=0.5, ge=0)
    """Share of a forecast rise provisioned for ahead (falls are never provisioned for)."""
    cost_per_vm_hour: float = Field(default=0.10, gt=0)
    """VM price, for the cost impact."""
    cache_load_reduction: float = Field(default=0.3, ge=0, lt=1)
    """Share of load the cache (enable_feature) is expected to absorb."""
    cache_cost_per_hour: float = Field(default=0.15, ge=0)
    """Cost rate of the cache."""
    throttle_utilisation: float = Field(default=0.85, gt=0, le=1)
    """Share of capacity adjust_policy lets through."""


def provisioned(sample: MetricSample) -> int:
    return int(sample.active_vms or 0) + int(sample.extra.get("booting_vms", 0.0))


def scale_delta(action: str, sample: MetricSample, load: float, trend: float, model: ImpactModel,
                bounds: tuple[int, int]) -> int:
    """VMs to add or remove: enough to bring the expected load to the target, within bounds."""
    vms = provisioned(sample)
    # Provision for (part of) the forecast rise, not a dip: scale-down is instant, boot is not.
    expected = load * (1.0 + model.trend_weight * max(0.0, trend))
    needed = math.ceil(max(vms, 1) * expected / model.target_utilisation)
    low, high = bounds
    # min(max(…)) is np.clip for these ints (the upper bound is never below 1), without numpy's
    # per-call cost on two scalars
    if action == "scale_up":
        return min(max(needed - vms, 1), max(1, high - vms))
    return min(max(vms - needed, 1), max(1, vms - low))


def _latency_after(latency: float, rho: float, rho_new: float) -> float:
    # Queueing: latency ∝ 1 / (1 - ρ); ρ is capped so a saturated service stays finite.
    rho, rho_new = min(rho, 0.95), min(max(rho_new, 0.0), 0.95)
    return latency * (1.0 - rho) / (1.0 - rho_new)


def expected_impact(action: str, sample: MetricSample, delta: int,
                    model: ImpactModel) -> dict[str, float]:
    """Expected change of the service's metrics once the action has taken effect."""
    cpu = sample.cpu_usage or 0.0
    rho = cpu / 100.0
    latency = sample.network_latency_ms or 0.0
    vms = max(provisioned(sample), 1)
    if action in ("scale_up", "scale_down"):
        sign = 1 if action == "scale_up" else -1
        rho_new = rho * vms / max(vms + sign * delta, 1)
        return {"active_vms": float(sign * delta),
                "cpu_usage": round(100 * (rho_new - rho), 2),
                "network_latency_ms": round(_latency_after(latency, rho, rho_new) - latency, 1),
                "cost_per_hour": round(sign * delta * model.cost_per_vm_hour, 4)}
    if action in ("enable_feature", "disable_feature"):
        share = model.cache_load_reduction
        factor = (1 - share) if action == "enable_feature" else 1 / (1 - share)
        sign = 1 if action == "enable_feature" else -1
        return {"cpu_usage": round(cpu * factor - cpu, 2),
                "network_latency_ms": round(
                    _latency_after(latency, rho, rho * factor) - latency, 1),
                "cost_per_hour": round(sign * model.cache_cost_per_hour, 4)}
    if action == "adjust_policy":
        rejected = max(0.0, 1.0 - model.throttle_utilisation / max(rho, 1e-6))
        capped = _latency_after(latency, rho, min(rho, model.throttle_utilisation))
        return {"error_rate": round(rejected, 4),
                "network_latency_ms": round(capped - latency, 1)}
    if action == "migrate_vm":
        return {"network_latency_ms": round(-0.15 * latency, 1),
                "cost_per_hour": round(model.cost_per_vm_hour, 4)}
    if action == "rebalance_load":
        imbalance = sample.extra.get("imbalance", 1.0)
        return {"network_latency_ms": round(-latency * (1 - 1 / max(imbalance, 1.0)) / 2, 1)}
    return {}


def observed(sample: MetricSample, metrics: Iterable[str]) -> dict[str, float]:
    """The sample's values of the metrics an expected impact names (VMs: running + booting, as
    the engine sizes them); metrics the sample does not report are left out."""
    out: dict[str, float] = {}
    for name in metrics:
        value = provisioned(sample) if name == "active_vms" else getattr(sample, name, None)
        if value is not None:
            out[name] = float(value)
    return out


def impact_met(expected: dict[str, float], before: dict[str, float], after: dict[str, float],
               status: str) -> bool | None:
    """Did the outcome meet the expected impact? The action succeeded and every predicted change
    that both samples report moved in the predicted direction. None: nothing to compare."""
    compared = [m for m, change in expected.items() if change and m in before and m in after]
    if status != "succeeded":
        return False
    if not compared:
        return None
    return all((after[m] - before[m]) * expected[m] > 0 for m in compared)


def reasoning(action: str, sample: MetricSample, state: np.ndarray, q: np.ndarray,
              mask: np.ndarray, conf: float, blocked: dict[str, str], delta: int) -> str:
    """A sentence or three an SRE can read: what, why (the state), how sure, what was ruled out."""
    # Python floats (exact copies of the float32 values; formatting a numpy scalar formats the
    # same double). The order stays numpy's argsort: its vectorised sort is not stable, and a
    # Python sort would name another runner-up when two Q-values tie exactly
    qs, x = q.tolist(), state.tolist()
    order = np.argsort(-q)
    allowed = order[mask[order]].tolist()
    best = allowed[0]  # allowed actions, best first
    runner = ""
    if len(allowed) > 1:
        runner = f"; next best {DQN_ACTIONS[allowed[1]]} {qs[allowed[1]]:.3f}"
    what = f"{action} by {delta} VM(s)" if action in ("scale_up", "scale_down") else action
    booting = int(sample.extra.get("booting_vms", 0.0))
    facts = (f"cpu {sample.cpu_usage or 0:.0f}%, latency {sample.network_latency_ms or 0:.0f} ms, "
             f"errors {100 * (sample.error_rate or 0):.2f}%, {sample.active_vms or 0} VMs"
             + (f" (+{booting} booting)" if booting else "")
             + f", load/capacity {x[3]:.2f}, trend {100 * state[7]:+.0f}%, "  # float32 product
               f"anomaly {x[8]:.2f}")
    text = (f"{what} on {sample.resource_id}: {facts}. Q {qs[best]:.3f}{runner}; "
            f"confidence {conf:.2f}.")
    if blocked:
        text += " Masked by safety limits: " + "; ".join(f"{a} ({r})" for a, r in blocked.items())
    return text[:4096]
