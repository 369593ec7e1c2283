"""Control API reads of live agent state: the compliance score and the open drift findings.

Mounted by the agents' companions (streams/compliance.py, streams/drift.py) with
`register_extension`; the Terraform data sources `novacron_compliance_score` and
`novacron_drift_findings` read them. Both answer from this worker's state: with several govern
workers, each holds the resources of its partitions (ClickHouse has the whole estate).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from agents.api_routes import Route
from schemas import ComplianceResult, Event

__all__ = ["FindingsApi", "ScoreApi", "score_of"]

Response = tuple[int, dict[str, Any]]


def _share(passed: int, failed: int) -> dict[str, Any]:
    total = passed + failed
    return {"score": round(100.0 * passed / total, 2) if total else 100.0, "passed": passed,
            "failed": failed}


def score_of(results: Iterable[ComplianceResult]) -> dict[str, Any]:
    """Passed share overall and per standard of the latest result per resource and control."""
    per: dict[str, list[int]] = {}
    total = [0, 0]
    for r in results:
        total[0 if r.passed else 1] += 1
        for std in {ref.split(":", 1)[0] for ref in r.standards}:
            per.setdefault(std, [0, 0])[0 if r.passed else 1] += 1
    return {**_share(*total), "standards": {s: _share(*c) for s, c in sorted(per.items())}}


class ScoreApi:
    """GET /compliance/score."""

    routes = (Route("GET", "/compliance/score", "read", "compliance", "_score",
                    "Compliance score overall and per standard (latest result per resource "
                    "and control)"),)

    def __init__(self, latest: Callable[[], Iterable[ComplianceResult]]) -> None:
        self.latest = latest

    def drain_events(self) -> list[Event]:
        return []

    def _score(self, **_: Any) -> Response:
        return 200, score_of(list(self.latest()))


class FindingsApi:
    """GET /drift/findings."""

    routes = (Route("GET", "/drift/findings", "read", "drift_finding", "_findings",
                    "Open drift findings: resource id and severity"),)

    def __init__(self, open_findings: Callable[[], Mapping[str, str]]) -> None:
        self.open_findings = open_findings

    def drain_events(self) -> list[Event]:
        return []

    def _findings(self, **_: Any) -> Response:
        found = sorted(self.open_findings().items())
        return 200, {"findings": [{"resource_id": r, "severity": s} for r, s in found]}
