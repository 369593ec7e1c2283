"""Decision accuracy: an executed decision met its expected impact, or did not, or cannot tell."""

from __future__ import annotations

from datetime import timedelta

import pytest

from agents.decision import DecisionConfig, DecisionEngine
from models.dqn.explain import impact_met, observed
from schemas import Outcome, action_id_for
from tests.unit.test_decision import T0, FixedQ, _sample


@pytest.mark.parametrize(("after", "status", "met"), [
    ({"cpu_usage": 60.0, "cost_per_hour": 1.2}, "succeeded", True),
    ({"cpu_usage": 90.0, "cost_per_hour": 1.2}, "succeeded", False),  # cpu rose instead
    ({"cpu_usage": 85.0, "cost_per_hour": 1.2}, "succeeded", False),  # no change is no effect
    ({"cpu_usage": 60.0, "cost_per_hour": 1.2}, "failed", False),
    ({"cost_per_hour": 1.2}, "succeeded", True),  # cpu unreported: judged on what is there
    ({}, "succeeded", None),  # nothing to compare
])
def test_impact_met(after: dict[str, float], status: str, met: bool | None) -> None:
    expected = {"cpu_usage": -20.0, "cost_per_hour": 0.2, "network_latency_ms": 0.0}
    before = {"cpu_usage": 85.0, "cost_per_hour": 1.0, "network_latency_ms": 150.0}
    assert impact_met(expected, before, after, status) is met


def test_observed_counts_booting_vms_and_skips_missing_metrics() -> None:
    sample = _sample(active_vms=4, extra={"booting_vms": 2.0}, cost_per_hour=None)
    assert observed(sample, ["active_vms", "cost_per_hour", "cpu_usage"]) == {
        "active_vms": 6.0, "cpu_usage": 85.0}


def _decide_and_close(engine: DecisionEngine, status: str, **after: object) -> None:
    engine.observe(_sample())
    decision = engine.decide("svc-0", T0)
    assert decision is not None and decision.decision_type == "scale_up"
    engine.record_outcome(Outcome(action_id=action_id_for(decision.event_id), status=status,
                                  resource_id="svc-0", action_type="scale_up"))
    engine.observe(_sample(1, **after))  # the sample after the outcome closes the transition


def test_engine_counts_executed_decisions_by_whether_they_met_their_impact() -> None:
    met, failed, missed = (DecisionEngine(policy=FixedQ("scale_up")) for _ in range(3))
    _decide_and_close(met, "succeeded", cpu_usage=50.0, network_latency_ms=100.0,
                      active_vms=15, cost_per_hour=1.5)
    _decide_and_close(failed, "failed", cpu_usage=50.0)
    _decide_and_close(missed, "succeeded", cpu_usage=95.0, network_latency_ms=300.0,
                      active_vms=15, cost_per_hour=1.5)  # more VMs, yet hotter and slower
    assert met.take_impact_checks() == {("scale_up", True): 1}
    assert met.take_impact_checks() == {}  # taken once
    assert failed.take_impact_checks() == {("scale_up", False): 1}
    assert missed.take_impact_checks() == {("scale_up", False): 1}


def test_unexecuted_and_shadow_decisions_are_not_judged() -> None:
    shadow = DecisionEngine(DecisionConfig(shadow=True), FixedQ("scale_up"))
    shadow.observe(_sample())
    assert shadow.decide("svc-0", T0) is not None
    shadow.observe(_sample(1, cpu_usage=50.0))
    idle = DecisionEngine(policy=FixedQ("no_action"))
    idle.observe(_sample())
    idle.decide("svc-0", T0)
    idle.observe(_sample(1))
    unanswered = DecisionEngine(DecisionConfig(outcome_timeout_seconds=30), FixedQ("scale_up"))
    unanswered.observe(_sample())
    unanswered.decide("svc-0", T0)
    unanswered.observe(_sample(5, event_time=T0 + timedelta(minutes=5)))  # no outcome: dropped
    assert not shadow.take_impact_checks() and not idle.take_impact_checks()
    assert not unanswered.take_impact_checks()
