"""Scan resources against the control library and score the result per standard."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from pydantic import BaseModel, Field

from policies.compliance.evaluator import ControlEvaluator
from policies.compliance.library import ControlLibrary
from policies.compliance.model import STANDARD_TITLES, STANDARDS, Control
from policies.compliance.resources import Resource
from schemas.errors import NovacronError
from schemas.findings import SEVERITIES

__all__ = ["Check", "ScanReport", "Scanner", "StandardScore", "Violation"]


class Violation(BaseModel):
    """A resource that fails a control."""

    resource_id: str
    resource_type: str
    control_id: str
    title: str
    severity: str
    refs: list[str] = Field(default_factory=list)
    """This standard's references of the control (`pci-dss:3.5.1`)."""
    remediation: str = ""
    auto_remediable: bool = False


class StandardScore(BaseModel):
    """The outcome for one standard."""

    standard: str
    title: str
    controls_evaluated: int = 0
    """Controls of the standard that applied to at least one resource."""
    controls_passed: int = 0
    """…of which every resource passed."""
    controls_failed: int = 0
    """…of which at least one resource failed."""
    checks: int = 0
    """Control × resource evaluations."""
    checks_passed: int = 0
    checks_failed: int = 0
    score: float | None = None
    """Passed checks in percent (None when nothing applied)."""
    violations: list[Violation] = Field(default_factory=list)


class ScanReport(BaseModel):
    """A scan of many resources against one or all standards."""

    resources: int = 0
    """Resources read."""
    resources_checked: int = 0
    """Resources at least one control applied to."""
    unchecked_types: dict[str, int] = Field(default_factory=dict)
    """Types no control covers, with their resource counts."""
    standards: dict[str, StandardScore] = Field(default_factory=dict)
    errors: list[str] = Field(default_factory=list)
    """Resources whose evaluation failed (their checks count as failed: fail closed)."""

    @property
    def failed(self) -> bool:
        return any(s.checks_failed for s in self.standards.values())


@dataclass(frozen=True, slots=True)
class Check:
    """Controls that applied to one resource and those it failed."""

    resource: Resource
    applicable: tuple[Control, ...]
    failing: frozenset[str]
    error: str | None = None


def _rank(v: Violation) -> tuple[int, str, str]:
    return SEVERITIES.index(v.severity), v.control_id, v.resource_id


class Scanner:
    """Evaluates each resource once, then tallies the checks per standard."""

    def __init__(self, library: ControlLibrary, evaluator: ControlEvaluator) -> None:
        self.library = library
        self.evaluator = evaluator

    def check(self, resource: Resource) -> Check:
        """Every control for the resource's type, evaluated in one query."""
        applicable = tuple(self.library.for_type(resource.type))
        if not applicable:
            return Check(resource, (), frozenset())
        try:
            failing = self.evaluator.failing(resource.type, resource.config)
        except (NovacronError, TypeError, ValueError) as exc:
            # Fail closed: a resource we cannot evaluate is not a compliant one.
            return Check(resource, applicable, frozenset(c.id for c in applicable), str(exc))
        return Check(resource, applicable, failing)

    def scan(self, resources: Iterable[Resource], standard: str | None = None) -> ScanReport:
        """Score the resources for one standard, or for every standard when None."""
        checks = [self.check(r) for r in resources]
        return self.report(checks, [standard] if standard else list(STANDARDS))

    def report(self, checks: Sequence[Check], standards: Sequence[str]) -> ScanReport:
        report = ScanReport(resources=len(checks))
        for c in checks:
            if c.applicable:
                report.resources_checked += 1
            else:
                report.unchecked_types[c.resource.type] = (
                    report.unchecked_types.get(c.resource.type, 0) + 1
                )
            if c.error:
                report.errors.append(f"{c.resource.address}: {c.error}")
        for s in standards:
            report.standards[s] = _score(s, checks)
        return report


def _score(standard: str, checks: Sequence[Check]) -> StandardScore:
    out = StandardScore(standard=standard, title=STANDARD_TITLES.get(standard, standard))
    evaluated: set[str] = set()
    failed: set[str] = set()
    for check in checks:
        for control in check.applicable:
            if not control.maps_to(standard):
                continue
            evaluated.add(control.id)
            out.checks += 1
            if control.id not in check.failing:
                out.checks_passed += 1
                continue
            out.checks_failed += 1
            failed.add(control.id)
            out.violations.append(_violation(control, check.resource, standard))
    out.controls_evaluated, out.controls_failed = len(evaluated), len(failed)
    out.controls_passed = out.controls_evaluated - out.controls_failed
    out.score = round(100.0 * out.checks_passed / out.checks, 2) if out.checks else None
    out.violations.sort(key=_rank)
    return out


def _violation(control: Control, resource: Resource, standard: str) -> Violation:
    return Violation(
        resource_id=resource.address,
        resource_type=resource.type,
        control_id=control.id,
        title=control.title,
        severity=control.severity,
        refs=control.refs(standard),
        remediation=control.remediation,
        auto_remediable=control.auto_remediation is not None,
    )
