"""Recommendations: right-size toward 60–70 % CPU, memory headroom, consolidation."""

from __future__ import annotations

import random

from models.recommend import RecommendConfig, Recommender


def _feed(cpu: float, mem: float | None = 50.0, vms: int = 4, n: int = 300) -> Recommender:
    rng = random.Random(0)
    model = Recommender()
    for _ in range(n):
        model.learn_one({"cpu_usage": max(0.0, cpu + rng.gauss(0, 2)), "memory_usage": mem,
                         "active_vms": vms, "cost_per_hour": 2.0})
    return model


def test_cold_start_recommends_nothing() -> None:
    assert Recommender().predict_one() == []
    assert _feed(20, n=5).predict_one() == []


def test_in_band_load_needs_nothing() -> None:
    assert _feed(62).predict_one() == []


def test_low_cpu_rightsizes_down_with_savings() -> None:
    [rec] = _feed(25).predict_one()
    assert rec.kind == "rightsize_down" and rec.decision_type == "scale_down"
    assert 40 < rec.estimated_improvement < 70
    assert rec.params["delta_vms"] < 0 and rec.params["cost_per_hour_saved"] > 0
    assert rec.dry_run and 0.5 < rec.confidence <= 1 and rec.actions


def test_high_cpu_rightsizes_up() -> None:
    [rec] = _feed(92).predict_one()
    assert rec.kind == "rightsize_up" and rec.params["delta_vms"] >= 1


def test_idle_resources_consolidate() -> None:
    [rec] = _feed(3).predict_one()
    assert rec.kind == "consolidate" and rec.decision_type == "migrate_vm"
    assert rec.estimated_improvement == 75.0  # 4 VMs onto 1


def test_memory_headroom_and_partial_samples() -> None:
    model = Recommender(RecommendConfig(min_samples=10))
    for _ in range(50):
        model.learn_one({"memory_usage": 95.0})  # no CPU in these samples: not zero CPU
    [rec] = model.predict_one()
    assert rec.kind == "memory_headroom" and rec.params["memory_increase_pct"] > 0
