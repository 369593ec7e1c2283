"""The compliance agent's gauges (govern role); the agent runs in the generic host (wiring.py)."""

from __future__ import annotations

from collections.abc import Sequence

from prometheus_client import Counter, Gauge

from schemas import ComplianceResult, Event
from streams.metrics import REGISTRY

__all__ = ["ComplianceCompanion"]

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


class ComplianceCompanion:
    """Counts results per standard and keeps the open-violation and score gauges current."""

    def __init__(self) -> None:
        self.score = _Score()

    def observe(self, events: Sequence[Event]) -> None:
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
