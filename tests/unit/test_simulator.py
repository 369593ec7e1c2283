"""The simulated world: determinism, metrics, config events and the effect of every action."""
# mypy: disable-error-code="operator"
# (the simulator fills every optional metric, so comparisons on them are safe here)

from __future__ import annotations

from pathlib import Path

import pytest

from agents.simulator import SimConfig, World
from models.dqn.reward import RewardConfig, reward, slo_violated
from schemas import DQN_ACTIONS, Action, MetricSample
from schemas.errors import RejectedError

QUIET = {"drift_probability": 0.0, "violation_probability": 0.0, "hot_host_probability": 0.0,
         "config_every_ticks": 0}


def _world(**overrides: object) -> World:
    return World(SimConfig(**{"services": 1, **QUIET, **overrides}))  # type: ignore[arg-type]


def _act(world: World, kind: str, **params: object):
    action = Action(action_id=f"a-{world.tick_index}-{kind}", resource_id="svc-0",
                    action_type=kind, params=params)
    return world.apply(action)


def _run(world: World, ticks: int) -> list[MetricSample]:
    return [world.step().metrics[0] for _ in range(ticks)]


def test_same_seed_same_world_and_ids() -> None:
    a, b = World(SimConfig(seed=3)), World(SimConfig(seed=3))
    for _ in range(50):
        ta, tb = a.step(), b.step()
        assert [m.model_dump() for m in ta.metrics] == [m.model_dump() for m in tb.metrics]
        assert [c.model_dump() for c in ta.configs] == [c.model_dump() for c in tb.configs]


def test_other_seed_other_world() -> None:
    a, b = World(SimConfig(seed=3)), World(SimConfig(seed=4))
    assert [m.request_rate for m in a.step().metrics] != [m.request_rate for m in b.step().metrics]


def test_metrics_per_service_and_clock() -> None:
    world = World(SimConfig(services=3, interval_seconds=30))
    first, second = world.step(), world.step()
    assert (second.time - first.time).total_seconds() == 30 and world.now == second.time
    assert [m.resource_id for m in first.metrics] == ["svc-0", "svc-1", "svc-2"]
    sample = first.metrics[0]
    assert sample.resource_type == "service" and sample.cluster == "sim"
    for field in ("cpu_usage", "memory_usage", "network_latency_ms", "request_rate",
                  "error_rate", "active_vms", "cost_per_hour"):
        assert getattr(sample, field) is not None


def test_latency_climbs_steeply_and_errors_under_overload() -> None:
    light = _world(initial_vms=20, max_vms=20)
    heavy = _world(initial_vms=1, max_vms=20)
    light_sample, heavy_sample = light.step().metrics[0], heavy.step().metrics[0]
    assert light_sample.request_rate == heavy_sample.request_rate
    assert heavy_sample.network_latency_ms > 5 * light_sample.network_latency_ms
    assert heavy_sample.error_rate > 0.1 and light_sample.error_rate == 0.0


def test_scale_up_boots_then_serves_and_bills_at_once() -> None:
    world = _world(initial_vms=2, vm_boot_ticks=2)
    before = world.step().metrics[0]
    outcome = _act(world, "scale_up", delta=3)
    assert outcome.status == "succeeded" and outcome.output["vms"] == 5
    booting, still, ready = _run(world, 3)
    assert booting.active_vms == 2 and booting.extra["booting_vms"] == 3
    assert booting.cost_per_hour == pytest.approx(5 * 0.10)
    assert still.active_vms == 2 and ready.active_vms == 5
    assert ready.cpu_usage < before.cpu_usage


def test_scale_respects_bounds() -> None:
    world = _world(initial_vms=2, min_vms=2, max_vms=3)
    world.step()
    assert _act(world, "scale_down").status == "failed"
    up = _act(world, "scale_up", delta=5)
    assert up.status == "succeeded" and up.output["vms"] == 3
    assert _act(world, "scale_up").status == "failed"
    assert _act(world, "scale_up", delta=0).status == "failed"


def test_scale_down_removes_booting_first() -> None:
    world = _world(initial_vms=3)
    world.step()
    _act(world, "scale_up", delta=1)
    outcome = _act(world, "scale_down", delta=1)
    assert outcome.output["removed"] == ["svc-0/vm-3"]
    assert world.step().metrics[0].active_vms == 3


def test_cache_cuts_load_at_a_cost_and_turns_off() -> None:
    world, plain = _world(initial_vms=3), _world(initial_vms=3)
    world.step(), plain.step()
    assert _act(world, "enable_feature").status == "succeeded"
    assert _act(world, "enable_feature").status == "skipped"
    warm, base = _run(world, 5)[-1], _run(plain, 5)[-1]
    assert warm.cpu_usage < 0.8 * base.cpu_usage
    assert warm.cost_per_hour == pytest.approx(base.cost_per_hour + 0.15)
    assert warm.extra["cache_enabled"] == 1.0
    _act(world, "disable_feature")
    assert _run(world, 1)[0].cost_per_hour == pytest.approx(base.cost_per_hour)


def test_throttle_bounds_latency_by_rejecting() -> None:
    world, plain = _world(initial_vms=1), _world(initial_vms=1)
    world.step(), plain.step()
    assert _act(world, "adjust_policy").status == "succeeded"
    throttled, base = world.step().metrics[0], plain.step().metrics[0]
    assert throttled.network_latency_ms < base.network_latency_ms
    assert throttled.error_rate > 0 and throttled.extra["throttle_active"] == 1.0


def test_migrate_moves_a_vm_off_a_hot_host_at_a_cost() -> None:
    world = _world(initial_vms=4, hosts=4)
    world.step()
    world.hot_left[0] = 100  # a noisy neighbour on host 0
    hot = world.step().metrics[0]
    outcome = _act(world, "migrate_vm")
    assert outcome.status == "succeeded" and outcome.output["from"] == "host-0"
    moving = world.step().metrics[0]
    assert moving.extra["billed_vms"] == 5  # billed twice while it moves
    after = _run(world, 2)[-1]
    assert after.extra["hot_vms"] == 0 < hot.extra["hot_vms"]


def test_rebalance_evens_the_load() -> None:
    world = _world(initial_vms=4)
    world.step()
    for i, vm in enumerate(world.services["svc-0"].vms):
        vm.log_weight = 0.4 * i  # a skewed balancer
    skewed = world.step().metrics[0]
    assert _act(world, "rebalance_load").output["effective_in_ticks"] == 1
    even = world.step().metrics[0]
    assert even.extra["imbalance"] < skewed.extra["imbalance"]
    assert even.network_latency_ms < skewed.network_latency_ms


def test_no_action_and_unknown_actions() -> None:
    world = _world()
    world.step()
    assert _act(world, "no_action").status == "succeeded"
    assert _act(world, "run_runbook").status == "skipped"
    with pytest.raises(RejectedError):
        world.service("nope")


def test_every_dqn_action_has_an_effect_handler() -> None:
    world = _world(initial_vms=3)
    world.step()
    for kind in DQN_ACTIONS:
        assert _act(world, kind).status in ("succeeded", "skipped")


def test_outcome_continues_the_chain() -> None:
    world = _world()
    world.step()
    action = Action(action_id="x1", resource_id="svc-0", action_type="scale_up",
                    correlation_id="root", event_id="parent")
    outcome = world.apply(action)
    assert (outcome.correlation_id, outcome.causation_id, outcome.action_id) == (
        "root", "parent", "x1")


def test_anomalies_raise_load_and_cost_for_a_while() -> None:
    world, plain = _world(initial_vms=5), _world(initial_vms=5)
    world.inject_anomaly("svc-0", "load", 2.0, ticks=2)
    world.inject_anomaly("svc-0", "cost", 3.0, ticks=1)
    a, b = _run(world, 3), _run(plain, 3)
    assert a[0].request_rate == pytest.approx(2 * b[0].request_rate, rel=1e-3)
    assert a[0].cost_per_hour == pytest.approx(3 * b[0].cost_per_hour)
    assert a[2].request_rate == pytest.approx(b[2].request_rate)
    with pytest.raises(RejectedError):
        world.inject_anomaly("svc-0", "disk", 2.0, 1)  # type: ignore[arg-type]


def test_config_snapshots_drift_and_violations() -> None:
    world = World(SimConfig(services=2, drift_probability=0.5, violation_probability=0.5,
                            config_every_ticks=5))
    events = [c for _ in range(12) for c in world.step().configs]
    kinds = {(c.resource_type, c.op, c.change_source) for c in events}
    assert ("novacron_vm", "create", "agent") in kinds
    assert ("novacron_network", "create", "terraform") in kinds
    assert any(c.change_source == "console" for c in events)  # drift by hand
    assert any(c.change_source == "sim" for c in events)  # periodic snapshot
    bad = [c for c in events if c.change_source == "api"]
    assert any(c.config.get("disk_encrypted") is False or c.config.get("public_ip") is True
               or c.config.get("tls") is False or c.config.get("public_access") is True
               or c.config.get("flow_logs") is False for c in bad)


def test_revert_restores_the_baseline() -> None:
    world = World(SimConfig(services=1, drift_probability=1.0, violation_probability=0.0))
    drifted = next(c for c in world.step().configs if c.change_source == "console")
    outcome = world.apply(Action(action_id="r1", resource_id=drifted.resource_id,
                                 action_type="revert_drift"))
    assert outcome.status == "succeeded"
    assert world.book.current[drifted.resource_id][1] == world.book.baseline[drifted.resource_id]


def test_csv_trace_is_scaled_to_demand(tmp_path: Path) -> None:
    trace = tmp_path / "t.csv"
    trace.write_text("timestamp,value\n" + "".join(
        f"2020-01-01 00:{i:02d}:00,{v}\n" for i, v in enumerate([1, 2, 3, 4] * 10)))
    world = _world(trace=str(trace), max_vms=10, peak_demand_fraction=0.5)
    rates = [m.request_rate for m in _run(world, 4)]
    assert rates == pytest.approx([125.0, 250.0, 375.0, 500.0])
    with pytest.raises(RejectedError):
        _world(trace=str(tmp_path / "missing.csv"))


def test_reward_prefers_slo_and_cheapness() -> None:
    cfg = RewardConfig()
    ok = MetricSample(resource_id="s", network_latency_ms=100, error_rate=0, cost_per_hour=0.5)
    slow = ok.model_copy(update={"network_latency_ms": 900})
    pricey = ok.model_copy(update={"cost_per_hour": 1.5})
    assert slo_violated(slow, cfg) and not slo_violated(ok, cfg)
    assert reward(ok, cfg) > reward(pricey, cfg) > reward(slow, cfg)
    assert reward(ok, cfg, acted=True) < reward(ok, cfg)
