"""The DQN safety mask rule by rule, with fixed examples: each limit at, just below and just
above its edge, in a state where no other rule masks the same action."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from models.dqn.safety import ACTION_INDEX, SafetyConfig, SafetyGuard
from schemas import DQN_ACTIONS, MetricSample

T0 = datetime(2026, 1, 5, tzinfo=UTC)
CFG = SafetyConfig(min_vms=2, max_vms=10, cooldown_seconds=120, scale_down_after_up_seconds=300,
                   max_actions_per_window=3, window_seconds=600, high_error_rate=0.01,
                   high_latency_ms=200, overload_seconds=180, overload_cpu=80)
QUIET = {"cpu_usage": 50.0, "network_latency_ms": 50.0, "error_rate": 0.0, "active_vms": 5}
"""A state no rule reacts to: every action is allowed."""


def _sample(at: float = 0, extra: dict[str, float] | None = None, **fields: Any) -> MetricSample:
    values = {**QUIET, **fields}
    return MetricSample(resource_id="svc", event_time=T0 + timedelta(seconds=at),
                        extra=extra or {}, **values)


def _blocked(guard: SafetyGuard | None = None, at: float = 0, **fields: Any) -> set[str]:
    guard = guard or SafetyGuard(CFG)
    return set(guard.blocked("svc", _sample(at, **fields), T0 + timedelta(seconds=at)))


def _allowed(guard: SafetyGuard | None = None, at: float = 0, **fields: Any) -> set[str]:
    guard = guard or SafetyGuard(CFG)
    mask = guard.mask("svc", _sample(at, **fields), T0 + timedelta(seconds=at))
    return {a for a in DQN_ACTIONS if mask[ACTION_INDEX[a]]}


def _after(*taken: tuple[float, str]) -> SafetyGuard:
    guard = SafetyGuard(CFG)
    for at, action in taken:
        guard.record("svc", action, T0 + timedelta(seconds=at))
    return guard


def test_a_quiet_state_allows_everything() -> None:
    assert _blocked() == set() and _allowed() == set(DQN_ACTIONS)


# --- bounds ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("vms", "booting", "blocked"),
                         [(9, 0, False), (10, 0, True), (11, 0, True), (8, 1, False),
                          (8, 2, True), (0, 10, True)])
def test_scale_up_stops_at_max_vms_counting_booting_ones(vms: int, booting: int,
                                                         blocked: bool) -> None:
    extra = {"booting_vms": float(booting)}
    assert ("scale_up" in _blocked(active_vms=vms, extra=extra)) is blocked
    assert ("scale_up" in _allowed(active_vms=vms, extra=extra)) is not blocked


@pytest.mark.parametrize(("vms", "booting", "blocked"),
                         [(3, 0, False), (2, 0, True), (1, 0, True), (1, 1, True),
                          (2, 1, False)])
def test_scale_down_stops_at_min_vms_counting_booting_ones(vms: int, booting: int,
                                                           blocked: bool) -> None:
    extra = {"booting_vms": float(booting)}
    assert ("scale_down" in _blocked(active_vms=vms, extra=extra)) is blocked
    assert ("scale_down" in _allowed(active_vms=vms, extra=extra)) is not blocked


@pytest.mark.parametrize(("errors", "blocked"),
                         [(0.0, False), (0.0099, False), (0.01, False), (0.0101, True),
                          (1.0, True)])
def test_no_scale_down_at_a_high_error_rate(errors: float, blocked: bool) -> None:
    assert _blocked(error_rate=errors) == ({"scale_down"} if blocked else set())


@pytest.mark.parametrize(("latency", "blocked"),
                         [(0.0, False), (199.9, False), (200.0, False), (200.1, True),
                          (5000.0, True)])
def test_no_scale_down_at_a_high_latency(latency: float, blocked: bool) -> None:
    assert _blocked(network_latency_ms=latency) == ({"scale_down"} if blocked else set())


def test_missing_readings_count_as_zero() -> None:
    assert _blocked(error_rate=None, network_latency_ms=None, cpu_usage=None) == set()
    assert {"scale_down", "migrate_vm"} <= _blocked(active_vms=None)


@pytest.mark.parametrize(("vms", "booting", "blocked"),
                         [(1, 0, True), (0, 0, True), (2, 0, False), (1, 1, False)])
def test_migration_needs_two_vms(vms: int, booting: int, blocked: bool) -> None:
    cfg = SafetyConfig(min_vms=0, max_vms=10)
    got = set(SafetyGuard(cfg).blocked(
        "svc", _sample(active_vms=vms, extra={"booting_vms": float(booting)}), T0))
    assert ("migrate_vm" in got) is blocked


# --- feature states --------------------------------------------------------------------------


@pytest.mark.parametrize(("extra", "blocked"), [
    ({"cache_enabled": 1.0}, {"enable_feature"}),
    ({"cache_enabled": 0.0}, {"disable_feature"}),
    ({}, set()),
    ({"cache_enabled": 0.5}, set()),
    ({"throttle_active": 1.0}, {"adjust_policy"}),
    ({"throttle_active": 0.0}, set()),
    ({"throttle_active": 0.5}, set()),
])
def test_feature_actions_that_would_change_nothing_are_masked(extra: dict[str, float],
                                                             blocked: set[str]) -> None:
    assert _blocked(extra=extra) == blocked


# --- history: cooldown, anti-flap, rate limit ------------------------------------------------


@pytest.mark.parametrize(("age", "blocked"), [(0, True), (119, True), (120, False), (121, False)])
def test_the_same_action_waits_for_its_cooldown(age: float, blocked: bool) -> None:
    guard = _after((0, "rebalance_load"))
    assert _blocked(guard, at=age) == ({"rebalance_load"} if blocked else set())


@pytest.mark.parametrize(("age", "blocked"),
                         [(0, {"scale_up", "scale_down"}), (119, {"scale_up", "scale_down"}),
                          (120, {"scale_down"}), (299, {"scale_down"}), (300, set()),
                          (301, set())])
def test_no_scale_down_soon_after_a_scale_up(age: float, blocked: set[str]) -> None:
    assert _blocked(_after((0, "scale_up")), at=age) == blocked


def test_a_scale_down_does_not_block_a_scale_up_beyond_its_own_cooldown() -> None:
    assert _blocked(_after((0, "scale_down")), at=10) == {"scale_down"}


def test_no_action_is_not_an_action() -> None:
    guard = _after(*[(i, "no_action") for i in range(5)])
    assert guard.actions_in_window("svc", T0 + timedelta(seconds=5)) == 0
    assert _blocked(guard, at=5) == set()


@pytest.mark.parametrize(("taken", "limited"), [(2, False), (3, True), (4, True)])
def test_the_rate_limit_blocks_every_action_at_its_count(taken: int, limited: bool) -> None:
    actions = ["rebalance_load", "migrate_vm", "adjust_policy", "enable_feature"]
    guard = _after(*[(i * 130, actions[i]) for i in range(taken)])
    at = taken * 130 + 130  # every cooldown has passed
    everything = set(DQN_ACTIONS) - {"no_action"}
    assert (_blocked(guard, at=at) == everything) is limited
    assert _allowed(guard, at=at) == ({"no_action"} if limited else set(DQN_ACTIONS))


@pytest.mark.parametrize(("age", "counted"), [(599, True), (600, False), (601, False)])
def test_the_rate_window_ends_at_its_length(age: float, counted: bool) -> None:
    guard = _after((0, "rebalance_load"), (300, "migrate_vm"), (400, "adjust_policy"))
    assert guard.actions_in_window("svc", T0 + timedelta(seconds=age)) == (3 if counted else 2)
    assert (_blocked(guard, at=age) == set(DQN_ACTIONS) - {"no_action"}) is counted


def test_history_is_per_service() -> None:
    guard = _after((0, "scale_up"))
    other = guard.blocked("svc-b", _sample().model_copy(update={"resource_id": "svc-b"}), T0)
    assert other == {}


# --- forced scale-up under sustained overload ------------------------------------------------


HOT = {"cpu_usage": 80.0, "network_latency_ms": 250.0}


def _overload(guard: SafetyGuard, since: float, until: float, **fields: Any) -> set[str]:
    for at in (since, until):
        allowed = _allowed(guard, at=at, **{**HOT, **fields})
    return allowed


@pytest.mark.parametrize(("duration", "forced"), [(0, False), (179, False), (180, True),
                                                  (181, True)])
def test_sustained_overload_forces_scale_up_from_its_duration(duration: float,
                                                              forced: bool) -> None:
    allowed = _overload(SafetyGuard(CFG), 0, duration)
    assert allowed == ({"scale_up"} if forced else set(DQN_ACTIONS) - {"scale_down"})


@pytest.mark.parametrize("fields", [
    {"cpu_usage": 79.9}, {"network_latency_ms": 200.0}, {"network_latency_ms": 50.0},
])
def test_no_overload_below_each_of_its_limits(fields: dict[str, float]) -> None:
    assert "no_action" in _overload(SafetyGuard(CFG), 0, 500, **fields)


def test_overload_by_errors_alone_counts() -> None:
    allowed = _overload(SafetyGuard(CFG), 0, 200, network_latency_ms=10.0, error_rate=0.02)
    assert allowed == {"scale_up"}
    assert "no_action" in _overload(SafetyGuard(CFG), 0, 200, network_latency_ms=10.0,
                                    error_rate=0.01)


def test_overload_restarts_after_a_cool_sample() -> None:
    guard = SafetyGuard(CFG)
    _allowed(guard, at=0, **HOT)
    _allowed(guard, at=100)  # cool: the overload clock stops
    assert "no_action" in _allowed(guard, at=200, **HOT)
    assert _allowed(guard, at=380, **HOT) == {"scale_up"}


def test_forcing_needs_scale_up_to_be_allowed_and_a_nonzero_duration() -> None:
    at_max = _overload(SafetyGuard(CFG), 0, 500, active_vms=10)
    assert "no_action" in at_max and "scale_up" not in at_max
    disabled = SafetyGuard(CFG.model_copy(update={"overload_seconds": 0}))
    assert "no_action" in _overload(disabled, 0, 500)
    guard = SafetyGuard(CFG)
    reasons = guard.blocked("svc", _sample(0, **HOT), T0)
    reasons = guard.blocked("svc", _sample(200, **HOT), T0 + timedelta(seconds=200))
    assert "no_action" not in reasons and set(reasons) == set(DQN_ACTIONS) - {
        "no_action", "scale_up"}
    assert reasons["rebalance_load"].startswith("overload: 200s")


# --- the state-only mask, and durable state --------------------------------------------------


def test_the_state_mask_has_bounds_and_features_only() -> None:
    guard = _after((0, "scale_up"), (1, "rebalance_load"), (2, "migrate_vm"))
    mask = guard.state_mask(_sample(active_vms=10, extra={"cache_enabled": 1.0}))
    assert {a for a in DQN_ACTIONS if not mask[ACTION_INDEX[a]]} == {"scale_up",
                                                                     "enable_feature"}
    low = guard.state_mask(_sample(active_vms=1, network_latency_ms=300.0))
    assert {a for a in DQN_ACTIONS if not low[ACTION_INDEX[a]]} == {"scale_down", "migrate_vm"}


def test_history_and_overload_survive_a_snapshot() -> None:
    guard = _after((0, "scale_up"))
    _allowed(guard, at=10, **HOT)
    state = guard.snapshot("svc")
    assert state is not None and guard.snapshot("other") is None
    restored = SafetyGuard(CFG)
    restored.restore("svc", state)
    assert _blocked(restored, at=200, **HOT) == _blocked(guard, at=200, **HOT)
    assert restored.history == guard.history
    assert restored.overloaded_since == guard.overloaded_since
    restored.restore("svc", {"history": [], "overloaded_since": None})
    assert "svc" not in restored.overloaded_since
    guard.forget("svc")
    assert guard.snapshot("svc") is None and _blocked(guard, at=1) == set()


# --- the reasons operators read, and readings that are absent --------------------------------


def test_each_rule_gives_its_reason() -> None:
    guard = SafetyGuard(CFG)
    assert guard.blocked("svc", _sample(active_vms=10, extra={"cache_enabled": 1.0,
                                                             "throttle_active": 1.0}), T0) == {
        "scale_up": "at max_vms=10", "enable_feature": "the cache is already enabled",
        "adjust_policy": "a throttle is already active"}
    assert guard.blocked("svc", _sample(active_vms=1, extra={"cache_enabled": 0.0}), T0) == {
        "scale_down": "at min_vms=2", "migrate_vm": "migration needs at least 2 VMs",
        "disable_feature": "the cache is already disabled"}
    assert guard.blocked("svc", _sample(error_rate=0.5, network_latency_ms=300.0), T0) == {
        "scale_down": "error rate 0.500 is high"}
    assert guard.blocked("svc", _sample(network_latency_ms=300.0), T0) == {
        "scale_down": "latency 300 ms is high"}


def test_history_rules_give_their_reasons() -> None:
    later = T0 + timedelta(seconds=130)
    assert _after((0, "scale_up")).blocked("svc", _sample(130), later) == {
        "scale_down": "anti-flap: scale_up 130s ago"}
    assert _after((100, "rebalance_load")).blocked("svc", _sample(130), later) == {
        "rebalance_load": "cooldown: rebalance_load 30s ago"}
    full = _after((0, "migrate_vm"), (1, "adjust_policy"), (2, "enable_feature"))
    reasons = full.blocked("svc", _sample(130), later)
    assert set(reasons) == set(DQN_ACTIONS) - {"no_action"}
    assert set(reasons.values()) == {"rate limit: 3 actions per 600s reached"}


def test_the_mask_is_boolean() -> None:
    guard = SafetyGuard(CFG)
    assert guard.mask("svc", _sample(), T0).dtype == bool
    assert guard.state_mask(_sample()).dtype == bool


def test_absent_readings_are_zero_even_where_one_would_matter() -> None:
    cfg = SafetyConfig(min_vms=0, max_vms=10, high_latency_ms=0.5, overload_cpu=0.5,
                       overload_seconds=10)
    guard = SafetyGuard(cfg)
    one_booting = _sample(active_vms=None, extra={"booting_vms": 1.0})
    assert "migrate_vm" in guard.blocked("svc", one_booting, T0)  # 0 + 1 VM, not 1 + 1
    quiet = _sample(cpu_usage=None, network_latency_ms=None)
    assert guard.blocked("svc", quiet, T0) == {}
    assert guard.blocked("svc", quiet, T0 + timedelta(seconds=60)) == {}  # never overloaded
    assert guard.overloaded_since == {}
    guard.blocked("svc", _sample(cpu_usage=None, network_latency_ms=300.0), T0)
    assert guard.overloaded_since == {}  # no CPU reading is 0 %, below even 0.5 %
    hot_no_latency = _sample(cpu_usage=90.0, network_latency_ms=None, error_rate=0.0)
    assert "no_action" in _allowed(guard, cpu_usage=90.0, network_latency_ms=None)
    assert guard.blocked("svc", hot_no_latency, T0 + timedelta(seconds=60)) == {}


def test_snapshots_of_history_without_overload_and_of_unknown_services() -> None:
    guard = _after((0, "scale_up"))
    assert guard.snapshot("svc") == {"history": [[T0.isoformat(), "scale_up"]],
                                     "overloaded_since": None}
    guard.restore("new", {"history": [], "overloaded_since": None})  # nothing to drop: no error
    guard.forget("never-seen")
    assert guard.snapshot("svc") is not None
