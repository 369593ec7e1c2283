"""The seed's metric names: aliases carry the source's samples, ratios are computed honestly."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.parser import text_string_to_metric_families

from schemas import Insight
from streams.metrics import RecommendationMetrics, render
from streams.seed_metrics import SEED_METRICS, Alias

SEED_NAMES = {
    "workflow_executions_total", "workflow_duration_seconds", "workflow_success_rate",
    "workflow_step_failures", "optimization_recommendations_total",
    "optimization_improvements_percentage", "optimization_confidence_score",
    "decisions_made_total", "decision_accuracy", "decision_latency_seconds",
    "compliance_score_percentage", "compliance_violations_total", "compliance_auto_remediated",
}


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for f in text_string_to_metric_families(text) for s in f.samples}


def _types(text: str) -> dict[str, str]:
    return dict(line.split()[2:4] for line in text.splitlines() if line.startswith("# TYPE"))


def _executor(registry: CollectorRegistry) -> tuple[Counter, Histogram, Counter, Counter]:
    workflows = Counter("novacron_executor_workflows_total", "w", ["runbook", "status"],
                        registry=registry)
    duration = Histogram("novacron_executor_workflow_duration_seconds", "d", ["runbook"],
                         buckets=(1, 10), registry=registry)
    steps = Counter("novacron_executor_step_failures_total", "s", ["runbook", "step", "final"],
                    registry=registry)
    actions = Counter("novacron_executor_actions_total", "a", ["action_type", "status"],
                      registry=registry)
    return workflows, duration, steps, actions


def test_every_seed_name_is_exported_by_exactly_one_role() -> None:
    names = [spec.name for specs in SEED_METRICS.values() for spec in specs]
    assert sorted(names) == sorted(SEED_NAMES)


def test_execute_role_aliases_and_ratios() -> None:
    registry = CollectorRegistry()
    workflows, duration, steps, actions = _executor(registry)
    workflows.labels("scale-up", "succeeded").inc(3)
    workflows.labels("notify", "failed").inc()
    workflows.labels("notify", "skipped").inc(5)  # redelivered: not an execution
    duration.labels("scale-up").observe(0.5)
    duration.labels("scale-up").observe(4)
    steps.labels("notify", "post", "true").inc(2)
    actions.labels("remediate_compliance", "succeeded").inc(2)
    actions.labels("remediate_compliance", "failed").inc()
    actions.labels("revert_drift", "succeeded").inc(7)
    text = render(registry, "execute").decode()
    got = _samples(text)
    executions = ("workflow_executions_total", (("runbook", "scale-up"), ("status", "succeeded")))
    assert got[executions] == 3.0
    assert got[("workflow_success_rate", ())] == pytest.approx(3 / 4)
    assert got[("workflow_step_failures", (("final", "true"), ("runbook", "notify"),
                                           ("step", "post")))] == 2.0
    assert got[("compliance_auto_remediated", ())] == 2.0  # drift reverts are not compliance
    assert got[("workflow_duration_seconds_count", (("runbook", "scale-up"),))] == 2.0
    assert got[("workflow_duration_seconds_sum", (("runbook", "scale-up"),))] == 4.5
    assert got[("workflow_duration_seconds_bucket", (("le", "1.0"), ("runbook", "scale-up")))] == 1
    types = _types(text)
    assert types["workflow_executions_total"] == "counter"
    assert types["workflow_step_failures"] == "untyped"  # the seed's name, without _total
    assert types["workflow_success_rate"] == "gauge"
    assert not any(name.startswith(("decision", "optimization")) for name in types)


def test_ratios_of_nothing_have_no_sample_and_unseen_counters_are_zero() -> None:
    registry = CollectorRegistry()
    _executor(registry)
    text = render(registry, "execute").decode()
    got = _samples(text)
    assert "# TYPE workflow_success_rate gauge" in text
    assert not [k for k in got if k[0] == "workflow_success_rate"]  # no workflow yet: undefined
    assert got[("compliance_auto_remediated", ())] == 0.0


def test_learn_role_accuracy_and_recommendation_means() -> None:
    registry = CollectorRegistry()
    checks = Counter("novacron_decision_impact_checks_total", "c", ["action", "met"],
                     registry=registry)
    Counter("novacron_decisions_total", "d", ["action", "mode"], registry=registry)
    Histogram("novacron_decision_latency_seconds", "l", registry=registry).observe(0.001)
    recommendations = RecommendationMetrics(registry)
    checks.labels("scale_up", "true").inc(3)
    checks.labels("scale_down", "false").inc()
    for improvement, confidence in ((10.0, 0.5), (30.0, 0.9)):
        recommendations.count(Insight(resource_id="vm-1", kind="recommendation",
                                      estimated_improvement=improvement, confidence=confidence,
                                      details={"recommendation": "rightsize_down"}))
    got = _samples(render(registry, "learn").decode())
    assert got[("decision_accuracy", ())] == pytest.approx(0.75)
    assert got[("optimization_improvements_percentage", ())] == pytest.approx(20.0)
    assert got[("optimization_confidence_score", ())] == pytest.approx(0.7)
    assert got[("optimization_recommendations_total",
                (("auto", "false"), ("kind", "rightsize_down")))] == 2.0
    assert got[("decision_latency_seconds_count", ())] == 1.0


def test_govern_role_score_and_violations() -> None:
    registry = CollectorRegistry()
    Gauge("novacron_compliance_score_percent", "s", ["standard"],
          registry=registry).labels("cis").set(87.5)
    Counter("novacron_compliance_violations_opened_total", "v", ["severity"],
            registry=registry).labels("HIGH").inc(4)
    got = _samples(render(registry, "govern").decode())
    assert got[("compliance_score_percentage", (("standard", "cis"),))] == 87.5
    assert got[("compliance_violations_total", (("severity", "HIGH"),))] == 4.0


def test_no_role_renders_the_registry_unchanged() -> None:
    registry = CollectorRegistry()
    _executor(registry)[0].labels("x", "succeeded").inc()
    assert "\nworkflow_" not in render(registry).decode()
    assert "\nworkflow_" not in render(registry, "ingest").decode()
    assert "\nworkflow_" in render(registry, "execute").decode()


def test_aliases_name_their_source_in_help() -> None:
    for specs in SEED_METRICS.values():
        for spec in specs:
            if isinstance(spec, Alias) and spec.keep is None:
                assert spec.source in spec.help
