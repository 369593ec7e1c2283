"""The compliance agent: checks every config change against the control library."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, field_validator

from policies.compliance import (
    STANDARDS,
    Control,
    ControlEvaluator,
    ControlLibrary,
    RegoEvaluator,
    Resource,
    Scanner,
    ScanReport,
    ViolationTracker,
    load_library,
    normalise_standard,
)
from schemas import ComplianceResult, ConfigChange, Decision
from schemas.errors import RejectedError

__all__ = ["SOURCE", "ComplianceChecker", "ComplianceConfig"]

SOURCE = "novacron.compliance"


class ComplianceConfig(BaseModel):
    """Settings of the compliance checker."""

    standards: list[str] = Field(default_factory=list)
    """Standards to check (cis, pci-dss, hipaa, soc2, gdpr, iso27001); empty means all."""
    emit_passed: bool = True
    """Emit a result for passing checks too (needed for scores over time in ClickHouse)."""
    auto_remediate: list[str] = Field(default_factory=lambda: ["MEDIUM", "LOW", "INFO"])
    """Severities whose auto-remediable violations are proposed without approval."""
    controls_dir: Path | None = None
    """Control YAML folder (default: the shipped library)."""
    rego_dir: Path | None = None
    """Rego folder (default: the shipped library)."""

    @field_validator("standards")
    @classmethod
    def _known(cls, value: list[str]) -> list[str]:
        try:
            return [normalise_standard(s) for s in value]
        except RejectedError as exc:  # pydantic reports ValueErrors as validation errors
            raise ValueError(str(exc)) from exc


class ComplianceChecker:
    """Pure agent: config changes in, ComplianceResults (and remediation Decisions) out."""

    def __init__(
        self,
        config: ComplianceConfig | None = None,
        *,
        library: ControlLibrary | None = None,
        evaluator: ControlEvaluator | None = None,
    ) -> None:
        self.config = config or ComplianceConfig()
        self.library = library or load_library(self.config.controls_dir, self.config.rego_dir)
        self.scanner = Scanner(self.library, evaluator or RegoEvaluator(self.library))
        self.tracker = ViolationTracker()

    def _selected(self, control: Control) -> bool:
        wanted = self.config.standards
        return not wanted or any(control.maps_to(s) for s in wanted)

    def _refs(self, control: Control) -> list[str]:
        if not self.config.standards:
            return control.refs()
        return [r for s in self.config.standards for r in control.refs(s)]

    def on_config(self, change: ConfigChange) -> list[ComplianceResult]:
        """Check one change: a result per applicable control, following the violation lifecycle."""
        if change.op == "delete":
            return self._deleted(change)
        resource = Resource(change.resource_id, change.resource_type, change.config)
        check = self.scanner.check(resource)
        out: list[ComplianceResult] = []
        for control in check.applicable:
            if not self._selected(control):
                continue
            passed = control.id not in check.failing
            step = self.tracker.observe(change.resource_id, control.id, passed, change.event_time)
            if step.status == "passed" and not self.config.emit_passed:
                continue
            out.append(self._result(change, control, passed, step.status, check.error))
        return out

    def _deleted(self, change: ConfigChange) -> list[ComplianceResult]:
        # A deleted resource violates nothing any more: close its open violations.
        return [
            self._result(change, self.library.get(cid), True, "remediated", None, "deleted")
            for cid in self.tracker.forget(change.resource_id)
            if cid in self.library.controls
        ]

    def _result(
        self,
        change: ConfigChange,
        control: Control,
        passed: bool,
        status: Any,
        error: str | None,
        note: str = "",
    ) -> ComplianceResult:
        if error:
            message = f"{control.title}: not evaluable ({error}), failing closed"
        elif passed:
            message = f"{control.title}: satisfied" + (f" ({note})" if note else "")
        else:
            message = f"{control.title}: violated by {change.resource_id}"
        return ComplianceResult.caused_by(
            change,
            source=SOURCE,
            resource_id=change.resource_id,
            resource_type=change.resource_type,
            control_id=control.id,
            standards=self._refs(control),
            severity=control.severity,
            passed=passed,
            status=status,
            message=message[:4096],
            remediation="" if passed else control.remediation,
        )

    def scan(self, resources: Iterable[Resource], standard: str | None = None) -> ScanReport:
        """A full scan scored per standard (the configured ones, or all, when None)."""
        key = normalise_standard(standard) if standard else None
        standards = [key] if key else (self.config.standards or list(STANDARDS))
        return self.scanner.report([self.scanner.check(r) for r in resources], standards)

    def accept(
        self,
        resource_id: str,
        control_id: str,
        *,
        by: str,
        reason: str,
        until: datetime | None = None,
    ) -> bool:
        """Accept the risk of an open violation (until a time, or for good)."""
        return self.tracker.accept(resource_id, control_id, by=by, reason=reason, until=until)

    def remediation(self, result: ComplianceResult) -> Decision | None:
        """A `remediate_compliance` Decision for an open violation whose control allows it."""
        if result.passed or result.status != "open":
            return None
        control = self.library.controls.get(result.control_id)
        if control is None or control.auto_remediation is None:
            return None
        auto = result.severity in self.config.auto_remediate
        return Decision.caused_by(
            result,
            source=SOURCE,
            resource_id=result.resource_id,
            decision_type="remediate_compliance",
            origin="compliance",
            confidence=1.0,
            reasoning=f"{result.severity}: {control.title} violated; apply the control's fix",
            params={
                "control_id": control.id,
                "resource_type": result.resource_type,
                "merge_patch": control.auto_remediation,
                "result_id": result.event_id,
                "standards": result.standards,
                "auto_remediate": auto,
            },
            requires_approval=not auto,
            severity=result.severity,
        )

    def snapshot(self) -> dict[str, Any]:
        return {"tracker": self.tracker.snapshot()}

    def restore(self, state: dict[str, Any]) -> None:
        self.tracker.restore(state.get("tracker", {}))
