"""Scores per standard, control and resource (the method is in docs/compliance.md, "Scores").

Every check (control × resource) ends as pass, fail, unknown (a value known only after apply)
or accepted (a failing check covered by a current risk acceptance). A control's score is the
share of its decided checks (pass + fail) that pass; a standard's score is the mean of its
controls' scores weighted by severity (CRITICAL 10, HIGH 5, MEDIUM 3, LOW 1, INFO 0). Unknown
and accepted checks are listed, never counted as passing or failing. A manual control has one
check: pass while an attestation is current, fail otherwise.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from policies.compliance.attestations import AttestationStore
from policies.compliance.model import STANDARD_TITLES, Control
from schemas.findings import SEVERITIES

__all__ = [
    "ORGANISATION",
    "ControlScore",
    "ResourceScore",
    "ScoredCheck",
    "StandardScore",
    "Violation",
    "score_standard",
]

ORGANISATION = "organisation"
"""The resource id of a manual control's check."""
Outcome = Literal["pass", "fail", "unknown", "accepted"]


@dataclass(frozen=True, slots=True)
class ScoredCheck:
    """One evaluated control on one resource (status: pass, fail, unknown or error)."""

    control: Control
    resource: str
    resource_type: str
    status: str
    evidence: Any = None
    """The Evidence of the check, or a function that builds it (called for findings only)."""


class Violation(BaseModel):
    """A check that is not a plain pass: failed, unknown, accepted, or a missing attestation."""

    resource_id: str
    resource_type: str
    control_id: str
    title: str
    severity: str
    status: str = "fail"
    """fail, unknown, accepted, error or not_attested."""
    refs: list[str] = Field(default_factory=list)
    """This standard's references of the control (`pci-dss:3.5.1`)."""
    remediation: str = ""
    auto_remediable: bool = False
    evidence: dict[str, Any] = Field(default_factory=dict)
    """Resource, attributes, companions, document digest (see scanner.Evidence)."""
    acceptance: dict[str, Any] | None = None
    """By, statement, evidence link and expiry of the acceptance or attestation involved."""


class ControlScore(BaseModel):
    """One control's checks in a standard."""

    control_id: str
    title: str
    severity: str
    kind: str
    weight: int
    refs: list[str]
    status: str
    """fail, accepted, unknown, pass (in that order of precedence), or not_applicable."""
    passed: int = 0
    failed: int = 0
    unknown: int = 0
    accepted: int = 0
    score: float | None = None
    """passed / (passed + failed) in percent; None when no check was decided."""
    passed_resources: list[str] = Field(default_factory=list)
    """Resources that pass the control (the evidence of a pass)."""


class ResourceScore(BaseModel):
    """One resource's checks in a standard, weighted by severity."""

    resource_id: str
    resource_type: str
    passed: int = 0
    failed: int = 0
    unknown: int = 0
    accepted: int = 0
    score: float | None = None


class StandardScore(BaseModel):
    """The outcome for one standard."""

    standard: str
    title: str
    controls_evaluated: int = 0
    """Controls of the standard with at least one check (manual controls included)."""
    controls_passed: int = 0
    controls_failed: int = 0
    controls_unknown: int = 0
    controls_accepted: int = 0
    checks: int = 0
    """Control × resource checks (manual controls: one each)."""
    checks_passed: int = 0
    checks_failed: int = 0
    checks_unknown: int = 0
    checks_accepted: int = 0
    score: float | None = None
    """Severity-weighted mean of the control scores in percent (None when nothing decided)."""
    controls: list[ControlScore] = Field(default_factory=list)
    resources: list[ResourceScore] = Field(default_factory=list)
    violations: list[Violation] = Field(default_factory=list)
    """Known failures without a current risk acceptance, most severe first."""
    unknown: list[Violation] = Field(default_factory=list)
    """Checks that depend on values known only after apply."""
    accepted: list[Violation] = Field(default_factory=list)
    """Failures covered by a current risk acceptance."""


def _acceptance_info(record: Any) -> dict[str, Any]:
    return {"by": record.by, "statement": record.statement, "evidence_url": record.evidence_url,
            "expires_at": record.expires_at.isoformat(),
            "recorded_at": record.event_time.isoformat(), "kind": record.kind}


def _violation(check: ScoredCheck, standard: str, status: str, extra: Any = None) -> Violation:
    c = check.control
    found = check.evidence() if callable(check.evidence) else check.evidence
    evidence = found.model_dump() if hasattr(found, "model_dump") else {}
    return Violation(
        resource_id=check.resource, resource_type=check.resource_type, control_id=c.id,
        title=c.title, severity=c.severity, status=status, refs=c.refs(standard),
        remediation=c.remediation, auto_remediable=c.auto_remediation is not None,
        evidence=evidence, acceptance=_acceptance_info(extra) if extra is not None else None,
    )


def _outcome(check: ScoredCheck, store: AttestationStore, now: datetime) -> tuple[Outcome, Any]:
    if check.status in ("fail", "error"):
        accepted = None if check.status == "error" else store.acceptance(
            check.control.id, check.resource, now)
        return ("accepted", accepted) if accepted else ("fail", None)
    return ("unknown", None) if check.status == "unknown" else ("pass", None)


def _manual_checks(manual: Sequence[Control], store: AttestationStore, now: datetime
                   ) -> list[tuple[ScoredCheck, Outcome, Any]]:
    out: list[tuple[ScoredCheck, Outcome, Any]] = []
    for c in manual:
        record = store.attestation(c.id, now)
        check = ScoredCheck(c, ORGANISATION, "manual", "pass" if record else "fail")
        out.append((check, "pass" if record else "fail",
                    record or store.latest("attestation", c.id)))
    return out


def _pct(num: float, den: float) -> float | None:
    return round(100.0 * num / den, 2) if den else None


def score_standard(
    standard: str,
    checks: Sequence[ScoredCheck],
    manual: Sequence[Control],
    store: AttestationStore,
    now: datetime,
) -> StandardScore:
    """Tally one standard's checks (automated and manual) into its scores and findings."""
    out = StandardScore(standard=standard, title=STANDARD_TITLES.get(standard, standard))
    rows = [(c, *_outcome(c, store, now)) for c in checks if c.control.maps_to(standard)]
    rows += _manual_checks(manual, store, now)
    controls: dict[str, ControlScore] = {}
    resources: dict[str, ResourceScore] = {}
    weights: dict[str, list[int]] = {}
    for check, outcome, record in rows:
        c = check.control
        cs = controls.setdefault(c.id, ControlScore(
            control_id=c.id, title=c.title, severity=c.severity, kind=c.kind, weight=c.weight,
            refs=c.refs(standard), status="pass"))
        rs = resources.setdefault(check.resource, ResourceScore(
            resource_id=check.resource, resource_type=check.resource_type))
        w = weights.setdefault(check.resource, [0, 0])
        setattr(cs, _FIELD[outcome], getattr(cs, _FIELD[outcome]) + 1)
        if outcome == "pass":
            cs.passed_resources.append(check.resource)
        setattr(rs, _FIELD[outcome], getattr(rs, _FIELD[outcome]) + 1)
        if outcome in ("pass", "fail"):
            w[1] += c.weight
            w[0] += c.weight if outcome == "pass" else 0
        _record(out, check, outcome, record, standard)
    for cs in controls.values():
        cs.score = _pct(cs.passed, cs.passed + cs.failed)
        cs.status = next(s for s, n in (("fail", cs.failed), ("accepted", cs.accepted),
                                        ("unknown", cs.unknown), ("pass", 1)) if n)
    for rid, rs in resources.items():
        rs.score = _pct(*weights[rid])
    _totals(out, list(controls.values()))
    out.controls = sorted(controls.values(), key=lambda s: (_RANK[s.status], -s.weight,
                                                            s.control_id))
    out.resources = sorted(resources.values(), key=lambda r: (r.score is None, r.score or 0,
                                                              r.resource_id))
    for found in (out.violations, out.unknown, out.accepted):
        found.sort(key=_rank)
    return out


_FIELD: dict[str, str] = {"pass": "passed", "fail": "failed", "unknown": "unknown",
                          "accepted": "accepted"}
_RANK = {"fail": 0, "accepted": 1, "unknown": 2, "pass": 3}


def _record(out: StandardScore, check: ScoredCheck, outcome: Outcome, record: Any,
            standard: str) -> None:
    out.checks += 1
    setattr(out, f"checks_{_FIELD[outcome]}", getattr(out, f"checks_{_FIELD[outcome]}") + 1)
    if outcome == "fail":
        status = "not_attested" if check.control.kind == "manual" else check.status
        out.violations.append(_violation(check, standard, status, record))
    elif outcome == "unknown":
        out.unknown.append(_violation(check, standard, "unknown"))
    elif outcome == "accepted":
        out.accepted.append(_violation(check, standard, "accepted", record))


def _totals(out: StandardScore, controls: list[ControlScore]) -> None:
    out.controls_evaluated = len(controls)
    for status in ("pass", "fail", "unknown", "accepted"):
        n = sum(1 for c in controls if c.status == status)
        setattr(out, f"controls_{_FIELD[status]}", n)
    decided = [c for c in controls if c.score is not None and c.weight > 0]
    out.score = _pct(sum(c.weight * (c.score or 0) / 100 for c in decided),
                     sum(c.weight for c in decided))


def _rank(v: Violation) -> tuple[int, str, str]:
    return SEVERITIES.index(v.severity), v.control_id, v.resource_id

