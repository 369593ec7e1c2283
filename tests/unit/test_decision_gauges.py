"""The decision host's per-service gauges follow the services with news, not a walk over all."""

from __future__ import annotations

from pathlib import Path

from agents.decision import DecisionEngine
from agents.shared import SharedState
from models.dqn.checkpoints import CheckpointStore
from schemas import MetricSample
from streams.decision import BUDGET, DecisionCompanion
from streams.metrics import REGISTRY


def _budget(service: str) -> float | None:
    return REGISTRY.get_sample_value("novacron_decision_budget_multiplier", {"service": service})


def _sample(service: str, latency: float) -> MetricSample:
    return MetricSample(resource_id=service, resource_type="service", cpu_usage=70.0,
                        network_latency_ms=latency, error_rate=0.0, request_rate=100.0,
                        active_vms=3)


def test_tick_updates_the_gauges_of_services_observed_since_and_only_those(tmp_path: Path
                                                                           ) -> None:
    engine = DecisionEngine()
    companion = DecisionCompanion(engine, CheckpointStore(tmp_path), SharedState())
    for service in ("gauge-a", "gauge-b"):
        engine.observe(_sample(service, 50.0))
    companion.tick()
    assert _budget("gauge-a") == engine.states.windows["gauge-a"].pressure
    assert _budget("gauge-b") == engine.states.windows["gauge-b"].pressure
    BUDGET.labels("gauge-b").set(-1.0)  # no news of gauge-b: the next tick leaves it
    engine.observe(_sample("gauge-a", 900.0))
    companion.tick()
    assert _budget("gauge-b") == -1.0
    assert _budget("gauge-a") == engine.states.windows["gauge-a"].pressure
    assert engine.take_changed() == set()  # the tick drained them


def test_a_restored_service_is_news(tmp_path: Path) -> None:
    engine = DecisionEngine()
    engine.observe(_sample("gauge-c", 50.0))
    blob = engine.snapshot("gauge-c")
    assert blob is not None
    fresh = DecisionEngine()
    fresh.restore("gauge-c", blob)
    assert fresh.take_changed() == {"gauge-c"}
