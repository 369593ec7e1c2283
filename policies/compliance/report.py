"""The audit report of one standard: per requirement, the controls that cover it, their status
and evidence, and the requirements no control covers."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from policies.compliance.catalogue import Catalogues
from policies.compliance.library import ControlLibrary
from policies.compliance.scanner import ScanReport
from policies.compliance.scoring import ControlScore, StandardScore, Violation

__all__ = ["ControlEntry", "FrameworkReport", "RequirementRow", "build_report"]

_ORDER = ("fail", "accepted", "unknown", "pass", "not_assessed")


class ControlEntry(BaseModel):
    """One control under a requirement."""

    control_id: str
    title: str
    severity: str
    kind: str
    ref: str
    """The control's reference that names this requirement."""
    status: str
    """fail, accepted, unknown, pass or not_assessed (no resource of its types was scanned)."""
    score: float | None = None
    passed_resources: list[str] = Field(default_factory=list)
    findings: list[Violation] = Field(default_factory=list)
    """Failures, unknowns and accepted risks, each with its evidence."""


class RequirementRow(BaseModel):
    """One requirement of the framework (or CIS recommendation of a benchmark version)."""

    catalogue: str
    requirement: str
    title: str
    status: str
    controls: list[ControlEntry]


class FrameworkReport(BaseModel):
    """What an auditor gets for one standard."""

    standard: str
    title: str
    generated_at: datetime
    source: str
    digest: str
    """SHA-256 of the scanned plan/state."""
    attestations: str
    """Where attestations and risk acceptances came from (kafka topic, a file, or none)."""
    score: StandardScore
    catalogues: list[dict[str, Any]]
    """Catalogues listed (key, title, version, sections)."""
    requirements: list[RequirementRow]
    uncovered: list[dict[str, str]]
    """Requirements no control covers: catalogue, requirement, title."""
    unlisted_refs: list[str] = Field(default_factory=list)
    """Control references that name no listed requirement (should be empty)."""


def _entries(score: StandardScore) -> tuple[dict[str, ControlScore], dict[str, list[Violation]]]:
    scores = {c.control_id: c for c in score.controls}
    findings: dict[str, list[Violation]] = {}
    for v in [*score.violations, *score.accepted, *score.unknown]:
        findings.setdefault(v.control_id, []).append(v)
    return scores, findings


def build_report(
    standard: str,
    scan: ScanReport,
    library: ControlLibrary,
    catalogues: Catalogues,
    now: datetime,
    attestations: str,
) -> FrameworkReport:
    """Join the scan's scores with the standard's requirement catalogues."""
    score = scan.standards[standard]
    scores, findings = _entries(score)
    rows: dict[tuple[str, str], list[ControlEntry]] = {}
    unlisted: list[str] = []
    for control in library.for_standard(standard):
        cs = scores.get(control.id)
        for ref in control.frameworks[standard]:
            found = catalogues.resolve(standard, ref)
            if found is None:
                unlisted.append(f"{control.id}: {standard}:{ref}")
                continue
            rows.setdefault(found, []).append(ControlEntry(
                control_id=control.id, title=control.title, severity=control.severity,
                kind=control.kind, ref=ref, status=cs.status if cs else "not_assessed",
                score=cs.score if cs else None,
                passed_resources=cs.passed_resources if cs else [],
                findings=findings.get(control.id, [])))
    requirements, uncovered, listed = [], [], []
    for catalogue in catalogues.for_standard(standard):
        listed.append({"key": catalogue.key, "title": catalogue.title,
                       "version": catalogue.version, "sections": list(catalogue.sections)})
        for rid, title in catalogue.requirements.items():
            entries = rows.get((catalogue.key, rid))
            if not entries:
                uncovered.append({"catalogue": catalogue.key, "requirement": rid, "title": title})
                continue
            status = min((e.status for e in entries), key=_ORDER.index)
            requirements.append(RequirementRow(catalogue=catalogue.key, requirement=rid,
                                               title=title, status=status, controls=entries))
    return FrameworkReport(
        standard=standard, title=score.title, generated_at=now, source=scan.source,
        digest=scan.digest, attestations=attestations, score=score, catalogues=listed,
        requirements=requirements, uncovered=uncovered, unlisted_refs=unlisted)
