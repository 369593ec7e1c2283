"""The compliance agent's gauges and API routes (govern role), and the attestation topic.

The agent runs in the generic host (streams/wiring.py). Attestations and risk acceptances live on
the compacted `compliance-attestations` topic (latest record per kind/control/resource): the host
folds it into the role's shared state before the first config change is checked and keeps
following it; the agent turns new records and expiries into results on its tick. The CLI writes
and reads the topic through `streams.attestations.AttestationLog`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from prometheus_client import Counter, Gauge

from agents.api_routes import register_extension
from agents.compliance import ComplianceChecker
from agents.compliance_api import ComplianceApi
from agents.report_api import ScoreApi
from schemas import ComplianceResult, Event
from streams.metrics import REGISTRY

__all__ = ["ComplianceCompanion"]

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
UNKNOWN = Counter(
    "novacron_compliance_unknown_checks_total",
    "Checks whose values are known only after apply (no result is emitted for them)",
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


class ComplianceCompanion:
    """Counts results per standard, keeps the open-violation and score gauges current, mounts
    the /compliance routes on the process's control API."""

    def __init__(self, checker: ComplianceChecker | None = None) -> None:
        self.score = _Score()
        self.checker = checker
        self._unknown = checker.unknown_checks if checker is not None else 0
        if checker is not None:
            register_extension(ComplianceApi(checker.library, checker.attestations))
            register_extension(ScoreApi(lambda: list(self.score.latest.values())))

    def observe(self, events: Sequence[Event]) -> None:
        if self.checker is not None:
            UNKNOWN.inc(self.checker.unknown_checks - self._unknown)
            self._unknown = self.checker.unknown_checks
        results = [e for e in events if isinstance(e, ComplianceResult)]
        if not results:
            return
        self.score.update(results)
        for r in results:
            for ref in r.standards[:1]:
                CHECKS.labels(ref.split(":", 1)[0], "pass" if r.passed else "fail").inc()

    def tick(self) -> None:
        return None

    def forgotten(self, key: str) -> None:
        return None
