"""Sizing, expected impact and readable reasoning of a DQN decision (pure functions)."""

from __future__ import annotations

import math
import struct
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
from pydantic import BaseModel, Field

from models.dqn.features import FEATURES
from schemas import DQN_ACTIONS, MetricSample

__all__ = ["ImpactModel", "expected_impact", "explanation", "impact_met", "observed", "reasoning",
           "round_to", "rounded", "scale_delta"]


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


_EXACT = 2.0 ** 52
"""Below this a double's distance to the nearest integer is exact (`p - round(p)`)."""


def round_to(value: float, ndigits: int) -> float:
    """`round(value, ndigits)` bit for bit, mostly without its decimal conversions (round()
    writes the value as a decimal string and reads it back; a Decision rounds 14 numbers).

    `value * 10**ndigits` rounds the exact product to a double; that cannot cross a half-way
    point, which is a double here, so unless it lands on one (an exact or a near tie) its
    nearest integer is that of the exact product, and dividing by 10**ndigits rounds correctly
    as round's own string → double conversion does. Ties, huge, non-finite and non-float
    values take round() itself."""
    scale = _SCALES.get(ndigits)
    if scale is not None and type(value) is float:
        p = value * scale
        if -_EXACT < p < _EXACT:
            r = round(p)
            if abs(p - r) != 0.5:
                return r / scale if r else value * 0.0  # zero with the value's sign, as round
    return round(value, ndigits)


def rounded(values: list[float], ndigits: int) -> list[float]:
    """[round(v, ndigits) for v in values] for floats (a float32 array's `tolist()`), as
    `round_to` rounds each, in one loop (a call per value would cost as much as it saves)."""
    scale = _SCALES[ndigits]
    out = []
    for v in values:
        p = v * scale
        if -_EXACT < p < _EXACT:
            r = round(p)
            if abs(p - r) != 0.5:
                out.append(r / scale if r else v * 0.0)
                continue
        out.append(round(v, ndigits))
    return out


_SCALES = {n: 10.0 ** n for n in range(10)}


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
                "cpu_usage": round_to(100 * (rho_new - rho), 2),
                "network_latency_ms": round_to(_latency_after(latency, rho, rho_new) - latency, 1),
                "cost_per_hour": round_to(sign * delta * model.cost_per_vm_hour, 4)}
    if action in ("enable_feature", "disable_feature"):
        share = model.cache_load_reduction
        factor = (1 - share) if action == "enable_feature" else 1 / (1 - share)
        sign = 1 if action == "enable_feature" else -1
        return {"cpu_usage": round_to(cpu * factor - cpu, 2),
                "network_latency_ms": round_to(
                    _latency_after(latency, rho, rho * factor) - latency, 1),
                "cost_per_hour": round_to(sign * model.cache_cost_per_hour, 4)}
    if action == "adjust_policy":
        rejected = max(0.0, 1.0 - model.throttle_utilisation / max(rho, 1e-6))
        capped = _latency_after(latency, rho, min(rho, model.throttle_utilisation))
        return {"error_rate": round_to(rejected, 4),
                "network_latency_ms": round_to(capped - latency, 1)}
    if action == "migrate_vm":
        return {"network_latency_ms": round_to(-0.15 * latency, 1),
                "cost_per_hour": round_to(model.cost_per_vm_hour, 4)}
    if action == "rebalance_load":
        imbalance = sample.extra.get("imbalance", 1.0)
        return {"network_latency_ms": round_to(-latency * (1 - 1 / max(imbalance, 1.0)) / 2, 1)}
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


def explanation(action: str, sample: MetricSample, state: np.ndarray, q: list[float],
                masked: tuple[list[bool], dict[str, str]], conf: float, model: ImpactModel,
                bounds: tuple[int, int], sizing_load: float | None = None) -> dict[str, Any]:
    """A DQN Decision's sizing and explanation fields (params, expected_impact, reasoning, state,
    confidence) for `action`, chosen at `conf` from the Q-values `q` under the safety mask
    (allowed actions, blocked ones with why) in `state`; `bounds` are the VM limits. A scale
    step is sized for `sizing_load` when given, else for the state's load feature."""
    allowed, blocked = masked
    x = state.tolist()  # exact copies of the float32 values, as float(state[i])
    delta, surge = 0, ""
    params: dict[str, Any] = {}
    if action in ("scale_up", "scale_down"):
        load = x[3] if sizing_load is None else sizing_load
        delta = scale_delta(action, sample, load, x[7], model, bounds)
        params["delta"] = delta
        if load > x[3]:
            surge = (f" Sized for the latest demand (load/capacity {load:.2f}): the service is "
                     "using up its SLO budget.")
    return {"params": params, "expected_impact": expected_impact(action, sample, delta, model),
            "reasoning": reasoning(action, sample, x, q, allowed, conf, blocked, delta) + surge,
            "state": dict(zip(FEATURES, rounded(x, 5), strict=True)),
            "confidence": round_to(conf, 4)}


def reasoning(action: str, sample: MetricSample, x: Sequence[float], q: Sequence[float],
              allowed: Sequence[bool], conf: float, blocked: dict[str, str], delta: int) -> str:
    """A sentence or three an SRE can read: what, why (the state), how sure, what was ruled out.

    The state `x`, the Q-values `q` and the safety mask `allowed` are Python floats and bools
    (exact copies of the float32 values: formatting a numpy scalar formats the same double)."""
    best, second = _best_two(q, allowed)
    runner = "" if second is None else f"; next best {DQN_ACTIONS[second]} {q[second]:.3f}"
    what = f"{action} by {delta} VM(s)" if action in ("scale_up", "scale_down") else action
    booting = int(sample.extra.get("booting_vms", 0.0))
    text = (f"{what} on {sample.resource_id}: cpu {sample.cpu_usage or 0:.0f}%, "
            f"latency {sample.network_latency_ms or 0:.0f} ms, "
            f"errors {100 * (sample.error_rate or 0):.2f}%, {sample.active_vms or 0} VMs"
            f"{f' (+{booting} booting)' if booting else ''}, load/capacity {x[3]:.2f}, "
            f"trend {_float32(100 * x[7]):+.0f}%, anomaly {x[8]:.2f}. "
            f"Q {q[best]:.3f}{runner}; confidence {conf:.2f}.")
    if blocked:
        text += " Masked by safety limits: " + "; ".join([f"{a} ({r})" for a, r in blocked.items()])
    return text[:4096]


def _float32(value: float) -> float:
    """`value` rounded to float32 as numpy rounds a float32 product: the text has always shown
    the trend as 100 × the float32 feature in float32 (the double product is exact: 24 + 7 bits)."""
    return _F32.unpack(_F32.pack(value))[0]  # type: ignore[no-any-return]


_F32 = struct.Struct("f")


def _best_two(q: Sequence[float], allowed: Sequence[bool]) -> tuple[int, int | None]:
    """The best allowed action and the next best one (None: it is the only one), ranked as
    numpy's argsort of -q ranks them. Its vectorised sort is not stable, so when the two places
    are not decided by distinct values (a tie, a NaN) numpy itself ranks them; otherwise a
    Python sort of the few allowed values gives the same two without the calls."""
    ranked = [i for i, ok in enumerate(allowed) if ok]
    if len(ranked) == 1:
        return ranked[0], None
    total = sum([q[i] for i in ranked])
    if total == total:  # no NaN (nor inf - inf)
        ranked.sort(key=q.__getitem__, reverse=True)
        top = [q[i] for i in ranked[:3]]
        if top[0] != top[1] and (len(top) == 2 or top[1] != top[2]):
            return ranked[0], ranked[1]
    order = np.argsort(-np.array(q, dtype=np.float32)).tolist()
    ranked = [i for i in order if allowed[i]]
    return ranked[0], ranked[1] if len(ranked) > 1 else None
