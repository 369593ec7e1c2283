"""Hard safety limits of the decision engine: a mask over the actions, applied before choice."""

from __future__ import annotations

from collections import deque
from datetime import datetime
from typing import Any, NamedTuple

import numpy as np
from pydantic import BaseModel, Field

from schemas import DQN_ACTIONS, MetricSample

__all__ = ["ACTION_INDEX", "SafetyConfig", "SafetyGuard"]

ACTION_INDEX = {name: i for i, name in enumerate(DQN_ACTIONS)}
_ALL_ALLOWED = np.ones(len(DQN_ACTIONS), dtype=bool)
"""Copied for each mask (a copy is cheaper than np.ones); never modified itself."""


class SafetyConfig(BaseModel):
    """Limits no model output can override."""

    min_vms: int = Field(default=1, ge=0)
    """Never scale below this many VMs (booting ones count)."""
    max_vms: int = Field(default=20, ge=1)
    """Never scale above this many VMs (booting ones count)."""
    cooldown_seconds: float = Field(default=120.0, ge=0)
    """The same action on the same service is not repeated within this time."""
    scale_down_after_up_seconds: float = Field(default=300.0, ge=0)
    """No scale_down this soon after a scale_up (against flapping)."""
    max_actions_per_window: int = Field(default=6, ge=1)
    """At most this many actions per service per window."""
    window_seconds: float = Field(default=600.0, gt=0)
    """The rate-limit window."""
    high_error_rate: float = Field(default=0.01, ge=0, le=1)
    """No scale_down while the error rate is above this."""
    high_latency_ms: float = Field(default=200.0, gt=0)
    """No scale_down while latency is above this."""
    overload_seconds: float = Field(default=180.0, ge=0)
    """A service overloaded this long (CPU ≥ overload_cpu with latency or errors above the
    limits above) gets scale_up forced: every other action, no_action included, is masked
    while scale_up is allowed. A learned policy can misjudge states it never trained on;
    sustained overload must not wait on it. 0 disables."""
    overload_cpu: float = Field(default=80.0, ge=0, le=100)
    """CPU percent from which a service with high latency or errors counts as overloaded.
    At 80 % a frugal model that parks a service just past its latency target (82 % CPU,
    270 ms, for hours) is made to add capacity; at 90 % it never was (docs/decisions.md)."""


def _provisioned(sample: MetricSample) -> int:
    return int(sample.active_vms or 0) + int(sample.extra.get("booting_vms", 0.0))


class _Limits(NamedTuple):
    """A guard's limits as plain numbers, with the texts that depend on them alone: read once
    (a pydantic field costs several plain reads, and the rules read a dozen per event; the
    config does not change while a guard uses it)."""

    cooldown: float
    flap: float
    window: float
    max_actions: int
    min_vms: int
    max_vms: int
    high_error_rate: float
    high_latency_ms: float
    overload_cpu: float
    overload_seconds: float
    rate_limited: str
    overload: str

    @classmethod
    def of(cls, cfg: SafetyConfig) -> _Limits:
        return cls(cfg.cooldown_seconds, cfg.scale_down_after_up_seconds, cfg.window_seconds,
                   cfg.max_actions_per_window, cfg.min_vms, cfg.max_vms, cfg.high_error_rate,
                   cfg.high_latency_ms, cfg.overload_cpu, cfg.overload_seconds,
                   f"rate limit: {cfg.max_actions_per_window} actions per "
                   f"{cfg.window_seconds:.0f}s reached",
                   f"s at cpu ≥ {cfg.overload_cpu:.0f}%, scale_up forced")


class SafetyGuard:
    """Per-service action history and the mask of allowed actions (True = allowed)."""

    def __init__(self, config: SafetyConfig | None = None) -> None:
        self.config = config or SafetyConfig()
        self.history: dict[str, deque[tuple[datetime, str]]] = {}
        self.overloaded_since: dict[str, datetime] = {}
        self._last: tuple[MetricSample, dict[str, str]] | None = None
        """The latest sample with its own reasons (bounds, features): closing a transition and
        the next decision both ask for the same sample."""
        self._limits = _Limits.of(self.config)

    @property
    def bounds(self) -> tuple[int, int]:
        """(min_vms, max_vms): the VM limits scale steps are sized within."""
        return self._limits.min_vms, self._limits.max_vms

    def blocked(self, service: str, sample: MetricSample, now: datetime) -> dict[str, str]:
        """Each masked action with the reason it is masked (no_action is not listed: `mask`
        masks it only while scale_up is forced)."""
        return self._reasons(service, sample, now)[0]

    def mask(self, service: str, sample: MetricSample, now: datetime) -> np.ndarray:
        """Boolean vector over DQN_ACTIONS: True where the action is allowed."""
        return self.mask_and_reasons(service, sample, now)[0]

    def mask_and_reasons(self, service: str, sample: MetricSample, now: datetime
                         ) -> tuple[np.ndarray, dict[str, str]]:
        """`mask` and `blocked` from one evaluation of the rules."""
        allowed, blocked = self.allowed_and_reasons(service, sample, now)
        return np.array(allowed, dtype=bool), blocked

    def allowed_and_reasons(self, service: str, sample: MetricSample, now: datetime
                            ) -> tuple[list[bool], dict[str, str]]:
        """`mask_and_reasons` with the mask as Python bools, for the decision path (its
        argmax, confidence and text read them one by one: cheaper than numpy items)."""
        blocked, forced = self._reasons(service, sample, now)
        allowed = [True] * len(DQN_ACTIONS)
        for action in blocked:
            allowed[ACTION_INDEX[action]] = False
        if forced:
            allowed[ACTION_INDEX["no_action"]] = False
        return allowed, blocked

    def _reasons(self, service: str, sample: MetricSample, now: datetime
                 ) -> tuple[dict[str, str], bool]:
        """The masked actions with their reasons, and whether scale_up is forced."""
        reasons: dict[str, str] = {}
        recent = self.history.get(service)
        if recent:  # rate limit first, then cooldowns: the order of the reasons in the text
            if self.actions_in_window(service, now) >= self._limits.max_actions:
                # every action (the history holds DQN actions): no cooldown can add one
                reasons = dict.fromkeys(DQN_ACTIONS, self._limits.rate_limited)
            else:
                self._cooldowns(recent, now, reasons)
        for action, why in self._sample_reasons(sample).items():
            reasons.setdefault(action, why)
        forced = self.forced(service, sample, now, reasons)
        if forced:
            for action in DQN_ACTIONS:
                if action != "scale_up":
                    reasons.setdefault(action, forced)
        reasons.pop("no_action", None)
        return reasons, bool(forced)

    def forced(self, service: str, sample: MetricSample, now: datetime,
               blocked: dict[str, str]) -> str | None:
        """Why scale_up is forced (sustained overload and scale_up allowed), or None."""
        since = self._overload(service, sample)
        limit = self._limits.overload_seconds
        if since is None or "scale_up" in blocked or not limit:
            return None
        age = (now - since).total_seconds()
        if age < limit:
            return None
        return f"overload: {age:.0f}{self._limits.overload}"

    def state_mask(self, sample: MetricSample) -> np.ndarray:
        """The part of the mask that depends on the sample alone (bounds, feature states).

        The trainer bootstraps with it: cooldowns and rate limits depend on history the
        9-feature state cannot see, and would alias states (no_action looks bad only
        because it follows bursts of actions).
        """
        allowed = _ALL_ALLOWED.copy()
        for action in self._sample_reasons(sample):
            allowed[ACTION_INDEX[action]] = action == "no_action"
        return allowed

    def _sample_reasons(self, sample: MetricSample) -> dict[str, str]:
        """The actions the sample alone masks (bounds, feature states), with why; not to be
        modified (the latest sample's are kept)."""
        last = self._last
        if last is not None and last[0] is sample:
            return last[1]
        reasons: dict[str, str] = {}
        self._bounds(sample, reasons)
        self._features(sample, reasons)
        self._last = (sample, reasons)
        return reasons

    def record(self, service: str, action: str, now: datetime) -> None:
        """Remember an action taken (no_action is not an action)."""
        if action != "no_action":
            recent = self.history.get(service)
            if recent is None:  # (setdefault would build a deque each time)
                recent = self.history[service] = deque()
            recent.append((now, action))

    def actions_in_window(self, service: str, now: datetime) -> int:
        recent = self.history.get(service)
        if not recent:
            return 0
        window = self._limits.window
        while recent and (now - recent[0][0]).total_seconds() >= window:
            recent.popleft()
        return len(recent)

    def _overload(self, service: str, s: MetricSample) -> datetime | None:
        """Start of the service's current overload (kept per service), or None."""
        lim = self._limits
        hot = (s.cpu_usage or 0.0) >= lim.overload_cpu and (
            (s.error_rate or 0.0) > lim.high_error_rate
            or (s.network_latency_ms or 0.0) > lim.high_latency_ms)
        if not hot:
            self.overloaded_since.pop(service, None)
            return None
        return self.overloaded_since.setdefault(service, s.event_time)

    def _cooldowns(self, recent: deque[tuple[datetime, str]], now: datetime,
                   reasons: dict[str, str]) -> None:
        cooldown, flap = self._limits.cooldown, self._limits.flap
        for when, action in recent:
            age = (now - when).total_seconds()
            if age < cooldown and action not in reasons:
                reasons[action] = f"cooldown: {action} {age:.0f}s ago"
            if action == "scale_up" and age < flap and "scale_down" not in reasons:
                reasons["scale_down"] = f"anti-flap: scale_up {age:.0f}s ago"

    def _bounds(self, s: MetricSample, reasons: dict[str, str]) -> None:
        lim, vms = self._limits, _provisioned(s)
        errors, latency = s.error_rate, s.network_latency_ms
        if vms >= lim.max_vms:
            reasons.setdefault("scale_up", f"at max_vms={lim.max_vms}")
        if vms <= lim.min_vms:
            reasons.setdefault("scale_down", f"at min_vms={lim.min_vms}")
        # the first reason stands: a later one is not even formatted
        if "scale_down" not in reasons and (errors or 0.0) > lim.high_error_rate:
            reasons["scale_down"] = f"error rate {errors:.3f} is high"
        if "scale_down" not in reasons and (latency or 0.0) > lim.high_latency_ms:
            reasons["scale_down"] = f"latency {latency:.0f} ms is high"
        if vms < 2:
            reasons.setdefault("migrate_vm", "migration needs at least 2 VMs")

    def _features(self, s: MetricSample, reasons: dict[str, str]) -> None:
        extra = s.extra
        cache = extra.get("cache_enabled")
        if cache == 1.0:
            reasons.setdefault("enable_feature", "the cache is already enabled")
        if cache == 0.0:
            reasons.setdefault("disable_feature", "the cache is already disabled")
        if extra.get("throttle_active") == 1.0:
            reasons.setdefault("adjust_policy", "a throttle is already active")

    # --- durable per-service state (the host checkpoints it: cooldowns survive a restart) -----
    def snapshot(self, service: str) -> dict[str, Any] | None:
        """One service's action history and overload start, JSON-ready; None when empty."""
        history = self.history.get(service)
        since = self.overloaded_since.get(service)
        if not history and since is None:
            return None
        return {"history": [[when.isoformat(), action] for when, action in history or ()],
                "overloaded_since": since.isoformat() if since is not None else None}

    def restore(self, service: str, state: dict[str, Any]) -> None:
        """Resume one service from `snapshot()`."""
        self.history[service] = deque(
            (datetime.fromisoformat(when), str(action)) for when, action in state["history"])
        since = state.get("overloaded_since")
        if since is None:
            self.overloaded_since.pop(service, None)
        else:
            self.overloaded_since[service] = datetime.fromisoformat(since)

    def forget(self, service: str) -> None:
        """Drop one service's history (it moved to another worker)."""
        self.history.pop(service, None)
        self.overloaded_since.pop(service, None)
