"""Scan resources against the control library: one three-valued check per control × subject."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from typing import Literal

from pydantic import BaseModel, Field

from policies.compliance.attestations import AttestationStore
from policies.compliance.evaluator import ControlEvaluator, Verdicts
from policies.compliance.graph import Subject, build_subjects
from policies.compliance.library import ControlLibrary
from policies.compliance.model import STANDARDS, Control
from policies.compliance.resources import Resource, ScanInput
from policies.compliance.scoring import ScoredCheck, StandardScore, score_standard
from schemas.envelope import utc_now
from schemas.errors import NovacronError

__all__ = ["Check", "Evidence", "ScanReport", "Scanner", "StandardScore", "Status"]

Status = Literal["pass", "fail", "unknown", "error"]


class Evidence(BaseModel):
    """What a verdict rests on: the resource, the attributes read, the document digest."""

    resource: str
    """Address of the resource the verdict is about."""
    resource_type: str
    attributes: list[str] = Field(default_factory=list)
    """Attributes the control reads (`*`: the whole config)."""
    members: dict[str, list[str]] = Field(default_factory=dict)
    """Attribute → companion resources that supplied it (S3 encryption, SG rules, ...)."""
    source: str = ""
    """plan, state, state-v4, resources or event."""
    digest: str = ""
    """SHA-256 of the scanned document."""


@dataclass(frozen=True, slots=True)
class Check:
    """Controls that applied to one subject and their verdicts."""

    subject: Subject
    applicable: tuple[Control, ...]
    verdicts: Verdicts = field(default_factory=Verdicts)
    error: str | None = None

    @property
    def resource(self) -> Resource:
        return self.subject.resource

    @property
    def failing(self) -> frozenset[str]:
        return self.verdicts.failing

    def status(self, control: Control) -> Status:
        if self.error:
            return "error"
        if control.id in self.verdicts.failing:
            return "fail"
        return "unknown" if control.id in self.verdicts.unknown else "pass"

    def evidence(self, control: Control, source: str = "", digest: str = "") -> Evidence:
        members = {k: v for k, v in self.subject.members.items()
                   if k in control.reads or "*" in control.reads}
        return Evidence(resource=self.resource.address, resource_type=self.resource.type,
                        attributes=list(control.reads), members=members, source=source,
                        digest=digest)


class ScanReport(BaseModel):
    """A scan of many resources against one or all standards."""

    resources: int = 0
    """Resources read."""
    resources_checked: int = 0
    """Subjects at least one control applied to (a bucket with its companions counts once)."""
    unchecked_types: dict[str, int] = Field(default_factory=dict)
    """Types no control covers, with their resource counts."""
    source: str = ""
    """plan, state, state-v4, resources or empty."""
    digest: str = ""
    """SHA-256 of the scanned document."""
    standards: dict[str, StandardScore] = Field(default_factory=dict)
    errors: list[str] = Field(default_factory=list)
    """Resources whose evaluation failed (their checks count as failed: fail closed)."""

    @property
    def failed(self) -> bool:
        return any(s.checks_failed for s in self.standards.values())


class Scanner:
    """Builds the resource graph, evaluates each subject once, then scores per standard."""

    def __init__(self, library: ControlLibrary, evaluator: ControlEvaluator) -> None:
        self.library = library
        self.evaluator = evaluator

    def check(self, resource: Resource | Subject) -> Check:
        """Every control for the subject's type, evaluated in one query."""
        subject = resource if isinstance(resource, Subject) else Subject(resource)
        applicable = tuple(self.library.for_type(subject.resource.type))
        if not applicable:
            return Check(subject, ())
        try:
            verdicts = self.evaluator.evaluate(subject.resource.type, subject.resource.config)
        except (NovacronError, TypeError, ValueError) as exc:
            # Fail closed: a resource we cannot evaluate is not a compliant one.
            return Check(subject, applicable, Verdicts(frozenset(c.id for c in applicable)),
                         str(exc))
        return Check(subject, applicable, verdicts)

    def checks(self, resources: Iterable[Resource]) -> list[Check]:
        """One check per subject of the resource graph, evaluated as one batch."""
        subjects = build_subjects(list(resources))
        applicable = [tuple(self.library.for_type(s.resource.type)) for s in subjects]
        todo = [i for i, a in enumerate(applicable) if a]
        try:
            answers = self.evaluator.evaluate_batch(
                [(subjects[i].resource.type, subjects[i].resource.config) for i in todo])
        except (NovacronError, TypeError, ValueError):  # the batch itself failed: one by one
            return [self.check(s) for s in subjects]
        verdicts = dict(zip(todo, answers, strict=True))
        return [self._check(s, a, verdicts.get(i)) for i, (s, a) in
                enumerate(zip(subjects, applicable, strict=True))]

    @staticmethod
    def _check(subject: Subject, applicable: tuple[Control, ...],
               answer: Verdicts | Exception | None) -> Check:
        if not applicable or answer is None:
            return Check(subject, ())
        if isinstance(answer, Exception):  # fail closed: not evaluable is not compliant
            return Check(subject, applicable, Verdicts(frozenset(c.id for c in applicable)),
                         str(answer))
        return Check(subject, applicable, answer)

    def scan(
        self,
        resources: Iterable[Resource] | ScanInput,
        standard: str | None = None,
        attestations: AttestationStore | None = None,
        now: datetime | None = None,
    ) -> ScanReport:
        """Score the resources for one standard, or for every standard when None."""
        scan_input = resources if isinstance(resources, ScanInput) else ScanInput(
            list(resources), "resources")
        checks = self.checks(scan_input.resources)
        return self.report(checks, [standard] if standard else list(STANDARDS), scan_input,
                           attestations, now)

    def report(
        self,
        checks: Sequence[Check],
        standards: Sequence[str],
        scan_input: ScanInput | None = None,
        attestations: AttestationStore | None = None,
        now: datetime | None = None,
    ) -> ScanReport:
        source = scan_input.kind if scan_input else ""
        digest = scan_input.digest if scan_input else ""
        report = ScanReport(resources=len(scan_input.resources) if scan_input else len(checks),
                            source=source, digest=digest)
        for c in checks:
            if c.applicable:
                report.resources_checked += 1
            else:
                report.unchecked_types[c.resource.type] = (
                    report.unchecked_types.get(c.resource.type, 0) + 1
                )
            if c.error:
                report.errors.append(f"{c.resource.address}: {c.error}")
        # Without an attestation store (an offline scan) manual controls are left out and no
        # risk acceptance applies: the scan judges the document alone.
        store = attestations if attestations is not None else AttestationStore()
        when = now or utc_now()
        # evidence is built only for the findings (a pass needs none): it is the costly part
        scored = [ScoredCheck(control, c.resource.address, c.resource.type, c.status(control),
                              partial(c.evidence, control, source, digest))
                  for c in checks for control in c.applicable]
        for s in standards:
            manual = self.library.manual(s) if attestations is not None else []
            report.standards[s] = score_standard(s, scored, manual, store, when)
        return report
