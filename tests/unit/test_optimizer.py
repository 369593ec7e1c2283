"""The optimizer agent's pure logic: insights, chains, rate limits, auto-apply, checkpoints."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from agents.optimizer import Optimizer, OptimizerConfig
from models.recommend import RecommendConfig
from schemas import Decision, Insight, MetricSample
from schemas.errors import DecodeError

START = datetime(2026, 1, 1, tzinfo=UTC)


def _samples(resource: str, n: int, cpu: float = 25.0, spike_at: int = -1) -> list[MetricSample]:
    rng = random.Random(resource)
    return [
        MetricSample(
            resource_id=resource, event_time=START + timedelta(minutes=5 * i),
            cpu_usage=min(100.0, cpu + rng.gauss(0, 1) + (60 if i == spike_at else 0)),
            memory_usage=40 + rng.gauss(0, 1) if i % 3 else None,  # partial samples
            cost_per_hour=1.5, active_vms=4,
        )
        for i in range(n)
    ]


def _run(opt: Optimizer, samples: list[MetricSample]) -> list:
    return [e for s in samples for e in opt.process(s)]


def test_insights_chain_to_their_sample_and_are_rate_limited() -> None:
    opt = Optimizer(OptimizerConfig(forecast_every=10, recommend_every=50))
    samples = _samples("vm-1", 200)
    out = []
    for s in samples:
        for event in opt.process(s):
            assert event.correlation_id == s.correlation_id
            assert event.causation_id == s.event_id
            out.append(event)
    forecasts = [e for e in out if isinstance(e, Insight) and e.kind == "forecast"]
    assert {e.metric for e in forecasts} == {"cpu_usage", "memory_usage", "cost_per_hour"}
    assert len([e for e in forecasts if e.metric == "cpu_usage"]) == 20  # every 10th of 200
    assert all(e.lower <= e.value <= e.upper and e.horizon == 3 for e in forecasts)
    assert all("quality" in e.details for e in forecasts)
    recs = [e for e in out if isinstance(e, Insight) and e.kind == "recommendation"]
    assert recs and all(r.dry_run and r.details["recommendation"] == "rightsize_down" for r in recs)
    assert not [e for e in out if isinstance(e, Decision)]


def test_anomaly_insight_on_a_spike() -> None:
    opt = Optimizer()
    out = _run(opt, _samples("vm-2", 900, cpu=50, spike_at=800))
    anomalies = [e for e in out if isinstance(e, Insight) and e.kind == "anomaly"]
    spike = [a for a in anomalies if a.details["metrics"]["cpu_usage"] > 99]
    assert len(spike) == 1  # the spike breaks through any cooldown left by a weaker alert
    assert all(a.score is not None and a.score >= a.threshold for a in anomalies)


def test_auto_apply_emits_a_decision_for_the_policy_gate() -> None:
    cfg = OptimizerConfig(auto_apply_confidence=0.5, recommend_every=100,
                          recommend=RecommendConfig(min_samples=20))
    out = _run(Optimizer(cfg), _samples("vm-3", 100))
    [decision] = [e for e in out if isinstance(e, Decision)]
    [insight] = [e for e in out if isinstance(e, Insight) and e.kind == "recommendation"]
    assert decision.origin == "optimizer" and decision.decision_type == "scale_down"
    assert decision.causation_id == insight.event_id and not insight.dry_run
    assert decision.correlation_id == insight.correlation_id


def test_quality_is_tracked_per_resource_and_overall() -> None:
    opt = Optimizer()
    _run(opt, _samples("a", 100) + _samples("b", 100))
    quality = opt.quality()
    assert set(quality["resources"]) == {"a", "b"}
    cpu = quality["overall"]["cpu_usage"]
    assert cpu["n"] > 150 and 0 < cpu["mae"] < 5 and 0 < cpu["mape"] < 20
    assert "network_latency_ms" not in quality["overall"]  # never sent: not scored as zero


def test_restored_resource_continues_exactly_like_the_original() -> None:
    samples = _samples("vm-4", 400, spike_at=350)
    original, resumed = Optimizer(), Optimizer()
    for s in samples[:300]:
        original.process(s)
    resumed.restore("vm-4", original.snapshot("vm-4"))
    assert set(original.snapshot_all()) == {"vm-4"}
    for s in samples[300:]:
        a, b = original.process(s), resumed.process(s)
        assert [e.model_dump(exclude={"event_id", "event_time"}) for e in a] == \
            [e.model_dump(exclude={"event_id", "event_time"}) for e in b]


def test_corrupt_snapshot_is_a_decode_error() -> None:
    with pytest.raises(DecodeError):
        Optimizer().restore("x", b"not a snapshot")
