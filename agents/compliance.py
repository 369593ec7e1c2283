"""The compliance agent: checks every config change against the control library."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, field_validator

from policies.compliance import (
    STANDARDS,
    AttestationStore,
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
from policies.compliance.scoring import ORGANISATION
from schemas import ComplianceResult, ConfigChange, Decision
from schemas.attestations import ComplianceAttestation
from schemas.envelope import utc_now
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
    parameters: dict[str, dict[str, Any]] = Field(default_factory=dict)
    """Control parameter overrides, e.g. {"aws-sg-public-ingress-allowlisted":
    {"allowed_ports": [443]}} (the intentionally public ports)."""
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
    """Pure agent: config changes and attestations in, ComplianceResults (and remediation
    Decisions) out.

    A check whose value is known only after apply is unknown: it gets no result (the event
    model has no such status) and is counted in `unknown_checks`.
    """

    def __init__(
        self,
        config: ComplianceConfig | None = None,
        *,
        library: ControlLibrary | None = None,
        evaluator: ControlEvaluator | None = None,
    ) -> None:
        self.config = config or ComplianceConfig()
        self.library = library or load_library(
            self.config.controls_dir, self.config.rego_dir, self.config.parameters)
        self.scanner = Scanner(self.library, evaluator or RegoEvaluator(self.library))
        self.tracker = ViolationTracker()
        self.attestations = AttestationStore()
        self.unknown_checks = 0
        self._expiry_reported: set[tuple[str, datetime]] = set()

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
            status = check.status(control)
            if status == "unknown":
                self.unknown_checks += 1
                continue
            passed = status == "pass"
            accepted = None if passed or check.error else self.attestations.acceptance(
                control.id, change.resource_id, change.event_time)
            step = self.tracker.observe(change.resource_id, control.id, passed,
                                        change.event_time, accepted)
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
        cause: Any,
        control: Control,
        passed: bool,
        status: Any,
        error: str | None,
        note: str = "",
        resource_id: str | None = None,
        resource_type: str | None = None,
    ) -> ComplianceResult:
        rid = resource_id or cause.resource_id
        if error:
            message = f"{control.title}: not evaluable ({error}), failing closed"
        elif passed:
            message = f"{control.title}: satisfied" + (f" ({note})" if note else "")
        else:
            message = f"{control.title}: {note or 'violated by ' + rid}"
        return ComplianceResult.caused_by(
            cause,
            source=SOURCE,
            resource_id=rid,
            resource_type=resource_type if resource_type is not None else cause.resource_type,
            control_id=control.id,
            standards=self._refs(control),
            severity=control.severity,
            passed=passed,
            status=status,
            message=message[:4096],
            remediation="" if passed else control.remediation,
        )

    # --- attestations and risk acceptances ------------------------------------------------------
    def on_attestation(
        self, record: ComplianceAttestation, now: datetime | None = None
    ) -> list[ComplianceResult]:
        """Apply an attestation or acceptance record (from the compacted topic) as of `now`
        (default: when it was recorded)."""
        self.attestations.apply(record)
        control = self.library.controls.get(record.control_id)
        if control is None or not self._selected(control):
            return []
        now = now or record.event_time
        if record.kind == "attestation":
            return [self._manual_result(record, control, now)] if control.kind == "manual" else []
        return self._reconsider(record.control_id, record, now)

    def _manual_result(self, cause: Any, control: Control, now: datetime) -> ComplianceResult:
        current = self.attestations.attestation(control.id, now)
        note = (f"attested by {current.by} until {current.expires_at:%Y-%m-%d}" if current
                else "no current attestation")
        status = "passed" if current else "open"
        return self._result(cause, control, current is not None, status, None, note,
                            resource_id=ORGANISATION, resource_type="manual")

    def _reconsider(self, control_id: str, cause: Any, now: datetime) -> list[ComplianceResult]:
        # An acceptance recorded (or revoked) applies at once to the violations already open.
        out = []
        for rid, cid, status in self.tracker.open_violations():
            if cid != control_id:
                continue
            accepted = self.attestations.acceptance(cid, rid, now)
            step = self.tracker.observe(rid, cid, False, now, accepted)
            if step.status != status:
                note = (f"risk accepted by {accepted.by} until {accepted.expires_at:%Y-%m-%d}"
                        if accepted else "risk acceptance withdrawn")
                out.append(self._result(cause, self.library.get(cid), False, step.status, None,
                                        note, resource_id=rid, resource_type=""))
        return out

    def expire(self, now: datetime) -> list[ComplianceResult]:
        """Results for acceptances and attestations that ran out since the last call (each
        continues the chain of the record that expired)."""
        out = []
        for rid, cid in self.tracker.expired(now):
            cause = (self.attestations.latest("acceptance", cid, rid)
                     or self.attestations.latest("acceptance", cid))
            if cid in self.library.controls and cause is not None:
                out.append(self._result(cause, self.library.get(cid), False, "open", None,
                                        "risk acceptance expired", resource_id=rid,
                                        resource_type=""))
        for record in self.attestations.records():
            control = self.library.controls.get(record.control_id)
            mark = (record.key, record.expires_at)
            if (record.kind == "attestation" and control is not None and control.kind == "manual"
                    and not record.revoked and record.expires_at <= now
                    and mark not in self._expiry_reported and self._selected(control)):
                self._expiry_reported.add(mark)  # reported once per attestation
                out.append(self._manual_result(record, control, now))
        return out

    def manual_results(self, cause: Any, now: datetime) -> list[ComplianceResult]:
        """The current status of every selected manual control (periodic full report)."""
        return [self._manual_result(cause, c, now) for c in self.library.manual()
                if self._selected(c)]

    def accept(
        self,
        resource_id: str,
        control_id: str,
        *,
        by: str,
        reason: str,
        until: datetime | None = None,
        now: datetime | None = None,
    ) -> ComplianceAttestation:
        """Record a risk acceptance here (the host publishes it to the attestation topic)."""
        control = self.library.get(control_id)
        if control.kind != "automated":
            raise RejectedError(f"{control_id} is a manual control: attest it instead")
        when = now or utc_now()
        record = ComplianceAttestation(
            kind="acceptance", control_id=control_id, resource_id=resource_id, by=by,
            statement=reason, expires_at=until or when + timedelta(days=90),
            source=SOURCE, event_time=when)
        self.on_attestation(record)
        return record

    def scan(self, resources: Iterable[Resource], standard: str | None = None) -> ScanReport:
        """A full scan scored per standard (the configured ones, or all, when None)."""
        key = normalise_standard(standard) if standard else None
        standards = [key] if key else (self.config.standards or list(STANDARDS))
        checks = self.scanner.checks(resources)
        return self.scanner.report(checks, standards, attestations=self.attestations)

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

