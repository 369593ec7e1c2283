"""The seed's Prometheus metric names: re-exports of novacron_* families and five derived ratios.

Users of the product description query `workflow_executions_total`, `decision_accuracy`, … The
worker counts everything once, under namespaced `novacron_*` names; at scrape time `SeedNames`
adds the seed's names for the role: aliases that copy a family's samples under the documented
name (no second counter that could drift), and ratios computed from the same scrape's counters.
docs/metrics.md documents every name.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Literal

from prometheus_client import CollectorRegistry
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
    UnknownMetricFamily,
)
from prometheus_client.registry import Collector
from prometheus_client.samples import Sample

__all__ = ["SEED_METRICS", "Alias", "Ratio", "SeedNames", "seed_names"]

Kind = Literal["counter", "histogram", "gauge", "untyped"]
Labels = dict[str, str]
Matcher = Callable[[Labels], bool]


@dataclass(frozen=True)
class Alias:
    """The samples of one novacron_* family under the seed's name."""

    name: str
    source: str
    """Family name as prometheus_client reports it (counters without `_total`)."""
    kind: Kind
    """`untyped` for a counter whose seed name lacks `_total` (the exposition format requires it
    of counters), so the exact name the seed documents is the one exported."""
    help: str
    keep: Matcher | None = None
    """Only samples whose labels match (None: all)."""


@dataclass(frozen=True)
class Ratio:
    """A gauge: the sum of one family's samples that match `hit` over those that match `of`."""

    name: str
    numerator: str
    """Sample name summed for the numerator (e.g. `…_total`, `…_sum`)."""
    denominator: str
    """Sample name summed for the denominator."""
    help: str
    hit: Matcher
    of: Matcher


def _always(_labels: Labels) -> bool:
    return True


def _finished(labels: Labels) -> bool:  # skipped = redelivered or unmapped: not an execution
    return labels.get("status") != "skipped"


SEED_METRICS: dict[str, tuple[Alias | Ratio, ...]] = {
    "ingest": (),
    "learn": (
        Alias("optimization_recommendations_total", "novacron_optimizer_recommendations",
              "counter", "Seed name of novacron_optimizer_recommendations_total: "
              "recommendations emitted, by kind and auto (also a Decision)"),
        Ratio("optimization_improvements_percentage",
              "novacron_optimizer_recommendation_improvement_percent_sum",
              "novacron_optimizer_recommendation_improvement_percent_count",
              "Mean improvement (percent) the recommender estimated for the recommendations "
              "emitted since the worker started (an estimate, not a measurement)",
              _always, _always),
        Ratio("optimization_confidence_score",
              "novacron_optimizer_recommendation_confidence_sum",
              "novacron_optimizer_recommendation_confidence_count",
              "Mean confidence (0-1) of the recommendations emitted since the worker started",
              _always, _always),
        Alias("decisions_made_total", "novacron_decisions", "counter",
              "Seed name of novacron_decisions_total: decision-engine (DQN) decisions emitted, "
              "by action and mode"),
        Ratio("decision_accuracy", "novacron_decision_impact_checks_total",
              "novacron_decision_impact_checks_total",
              "Share (0-1) of executed decisions whose outcome met the expected impact, since "
              "the worker started (see novacron_decision_impact_checks_total)",
              lambda labels: labels.get("met") == "true", _always),
        Alias("decision_latency_seconds", "novacron_decision_latency_seconds", "histogram",
              "Seed name of novacron_decision_latency_seconds: latency of one decision"),
    ),
    "govern": (
        Alias("compliance_score_percentage", "novacron_compliance_score_percent", "gauge",
              "Seed name of novacron_compliance_score_percent: passed share of the latest "
              "result per resource and control, by standard"),
        Alias("compliance_violations_total", "novacron_compliance_violations_opened", "counter",
              "Seed name of novacron_compliance_violations_opened_total: violations opened "
              "(new, or reopened after an acceptance expired), by severity"),
    ),
    "execute": (
        Alias("workflow_executions_total", "novacron_executor_workflows", "counter",
              "Seed name of novacron_executor_workflows_total: workflow executions by runbook "
              "and final status"),
        Alias("workflow_duration_seconds", "novacron_executor_workflow_duration_seconds",
              "histogram", "Seed name of novacron_executor_workflow_duration_seconds: wall "
              "time of one action"),
        Ratio("workflow_success_rate", "novacron_executor_workflows_total",
              "novacron_executor_workflows_total",
              "Share (0-1) of finished workflows (skipped ones excluded) that succeeded, since "
              "the worker started (succeeded_with_failures is not success)",
              lambda labels: labels.get("status") == "succeeded", _finished),
        Alias("workflow_step_failures", "novacron_executor_step_failures", "untyped",
              "Seed name of novacron_executor_step_failures_total (a counter): failed step "
              "attempts by runbook, step and final"),
        Alias("compliance_auto_remediated", "novacron_executor_actions", "untyped",
              "Compliance violations remediated by the executor (a counter): "
              "remediate_compliance actions whose runbook succeeded, its checks included",
              lambda labels: labels.get("action_type") == "remediate_compliance"
              and labels.get("status") == "succeeded"),
    ),
}
"""The seed's names each role exports (every role's own novacron_* families come first)."""


class SeedNames(Collector):
    """The source registry's families, then the role's seed names computed from the same scrape."""

    def __init__(self, source: CollectorRegistry, role: str) -> None:
        self.source, self.specs = source, SEED_METRICS.get(role, ())

    def collect(self) -> Iterator[Metric]:
        families = list(self.source.collect())
        yield from families
        by_name = {f.name: f for f in families}
        for spec in self.specs:
            if isinstance(spec, Alias):
                yield _alias(spec, by_name.get(spec.source))
            else:
                yield _ratio(spec, families)


def seed_names(source: CollectorRegistry, role: str) -> CollectorRegistry:
    """A registry to render for `role`: the source's metrics plus the role's seed names."""
    view = CollectorRegistry(auto_describe=False)
    view.register(SeedNames(source, role))
    return view


def _alias(spec: Alias, family: Metric | None) -> Metric:
    samples = [] if family is None else [
        s for s in family.samples
        if not s.name.endswith("_created") and (spec.keep is None or spec.keep(s.labels))]
    names = sorted({k for s in samples for k in s.labels} - {"le"})
    if spec.kind == "histogram":
        return _histogram(spec, names, samples)
    kind = {"counter": CounterMetricFamily, "gauge": GaugeMetricFamily,
            "untyped": UnknownMetricFamily}[spec.kind]
    if spec.keep is not None:  # a filtered alias is one total (the filter fixes its labels)
        total = kind(spec.name, spec.help, labels=[])
        if family is not None:  # registered but never counted: truly zero so far
            total.add_metric([], sum(s.value for s in samples))
        return total
    out = kind(spec.name, spec.help, labels=names)
    for s in samples:
        out.add_metric([s.labels[n] for n in names], s.value)
    return out


def _histogram(spec: Alias, names: list[str], samples: Iterable[Sample]) -> Metric:
    series: dict[tuple[str, ...], tuple[list[tuple[str, float]], list[float]]] = {}
    for s in samples:
        key = tuple(s.labels[n] for n in names)
        buckets, total = series.setdefault(key, ([], [0.0]))
        if s.name.endswith("_bucket"):
            buckets.append((s.labels["le"], s.value))
        elif s.name.endswith("_sum"):
            total[0] = s.value
    out = HistogramMetricFamily(spec.name, spec.help, labels=names)
    for key, (buckets, total) in series.items():
        out.add_metric(list(key), buckets, total[0])
    return out


def _ratio(spec: Ratio, families: list[Metric]) -> Metric:
    samples = [s for f in families for s in f.samples]
    hits = sum(s.value for s in samples if s.name == spec.numerator and spec.hit(s.labels))
    total = sum(s.value for s in samples if s.name == spec.denominator and spec.of(s.labels))
    out = GaugeMetricFamily(spec.name, spec.help)
    if total > 0:  # a ratio of nothing is undefined: no sample rather than a made-up 0 or 1
        out.add_metric([], hits / total)
    return out
