"""Kafka wiring of the compliance agent (govern role): every config change is checked at once."""

from __future__ import annotations

import asyncio
import logging

import faust
from prometheus_client import Counter, Gauge

from agents.compliance import ComplianceChecker
from schemas import ComplianceResult, ConfigChange, Event
from streams.app import WorkerContext
from streams.metrics import REGISTRY

__all__ = ["register"]

log = logging.getLogger(__name__)
CHECKS = Counter(
    "novacron_compliance_checks_total",
    "Control results, by standard and outcome",
    ["standard", "outcome"],
    registry=REGISTRY,
)
OPEN = Gauge(
    "novacron_compliance_open_violations",
    "Open violations by severity",
    ["severity"],
    registry=REGISTRY,
)
OPENED = Counter(
    "novacron_compliance_violations_opened_total",
    "Violations opened (new, or reopened after an acceptance expired), by severity",
    ["severity"],
    registry=REGISTRY,
)
SCORE = Gauge(
    "novacron_compliance_score_percent",
    "Passed share of the latest result per resource and control, by standard",
    ["standard"],
    registry=REGISTRY,
)


class _Score:
    """Latest result per (resource, control), so the score reflects the current estate."""

    def __init__(self) -> None:
        self.latest: dict[tuple[str, str], ComplianceResult] = {}

    def update(self, results: list[ComplianceResult]) -> None:
        for r in results:
            before = self.latest.get((r.resource_id, r.control_id))
            if r.status == "open" and (before is None or before.status != "open"):
                OPENED.labels(r.severity).inc()
            self.latest[(r.resource_id, r.control_id)] = r
        by_std: dict[str, list[bool]] = {}
        severities: dict[str, int] = {}
        for r in self.latest.values():
            for ref in r.standards:
                by_std.setdefault(ref.split(":", 1)[0], []).append(r.passed)
            if r.status == "open":
                severities[r.severity] = severities.get(r.severity, 0) + 1
        for std, passed in by_std.items():
            SCORE.labels(std).set(100.0 * sum(passed) / len(passed))
        for severity in ("CRITICAL", "HIGH", "MEDIUM", "LOW", "INFO"):
            OPEN.labels(severity).set(severities.get(severity, 0))


def register(app: faust.App, ctx: WorkerContext) -> None:
    """An agent on `config`: results to `compliance`, auto-remediations to `decisions`."""
    checker = ComplianceChecker(ctx.settings.compliance)
    score = _Score()

    @app.agent(ctx.raw_topic(app, "config"))
    async def check(stream: faust.StreamT[bytes]) -> None:
        async for values in stream.take(200, within=0.5):
            changes = ctx.decode_all(values, ConfigChange)
            # Rego evaluation is CPU work (~1 ms per resource): keep the event loop responsive
            results = await asyncio.to_thread(_check_all, checker, changes)
            out: list[Event] = list(results)
            out += [d for r in results if (d := checker.remediation(r)) is not None]
            await ctx.emitter.emit(out)
            score.update(results)
            for r in results:
                for ref in r.standards[:1]:
                    CHECKS.labels(ref.split(":", 1)[0], "pass" if r.passed else "fail").inc()
            ctx.metrics.events.labels("compliance", "config").inc(len(changes))


def _check_all(checker: ComplianceChecker, changes: list[ConfigChange]) -> list[ComplianceResult]:
    results: list[ComplianceResult] = []
    for change in changes:
        try:
            results += checker.on_config(change)
        except Exception:  # one broken resource must not stop the agent; the checker fails closed
            log.exception("compliance check of %s failed", change.resource_id)
    return results
