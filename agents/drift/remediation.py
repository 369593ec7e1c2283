"""Remediation proposals for drift findings: revert to the baseline or accept the drift."""

from __future__ import annotations

from typing import Any

from agents.drift.config import APPROVAL_SEVERITIES, DriftConfig
from agents.drift.diff import Change
from agents.drift.engine import DriftReport
from schemas import ConfigChange, Decision, DesiredState, DriftFinding

__all__ = ["proposal", "revert_patch"]

SOURCE = "novacron.drift"


def revert_patch(changes: list[Change]) -> list[dict[str, Any]]:
    """An RFC 6902 patch that turns the current config back into the baseline.

    Values have ignored fields stripped and set-mode list paths are positional, so runbooks
    should treat `baseline_config` as the authority and the patch as the list of what to touch.
    """
    patch: list[dict[str, Any]] = []
    for c in changes:
        if c.op == "changed":
            patch.append({"op": "replace", "path": c.path, "value": c.old})
        elif c.op == "added":
            patch.append({"op": "remove", "path": c.path})
        else:
            patch.append({"op": "add", "path": c.path, "value": c.old})
    return patch


def _reasoning(report: DriftReport, finding: DriftFinding, accept: bool) -> str:
    what = (
        f"{report.drifted_leaves} of {report.total_leaves} fields drifted "
        f"({report.ratio:.0%}) from baseline {finding.baseline_revision or '?'}"
    )
    if report.sensitive:
        what += "; security-sensitive fields changed"
    shown = ", ".join(report.changed_fields[:5]) + (" …" if len(report.changed_fields) > 5 else "")
    plan = "accept the current config as the new baseline" if accept else "revert to the baseline"
    return f"{finding.severity}: {what} ({shown}); proposal: {plan}"[:4096]


def proposal(
    finding: DriftFinding,
    report: DriftReport,
    baseline: DesiredState,
    change: ConfigChange,
    config: DriftConfig,
) -> Decision:
    """The remediation Decision for a finding (origin drift), for the policy gate."""
    accept = change.change_source in config.accept_sources and change.op != "delete"
    auto = finding.severity in config.auto_remediate and finding.severity not in APPROVAL_SEVERITIES
    params: dict[str, Any] = {
        "finding_id": finding.event_id,
        "resource_type": finding.resource_type,
        "fields": finding.changed_fields,
        "baseline_hash": finding.baseline_hash,
        "baseline_revision": finding.baseline_revision,
        "auto_remediate": auto,
    }
    if accept:
        params |= {"config": change.config, "config_change_id": change.event_id}
    else:
        params |= {
            "runbook": config.revert_runbook,
            "revert": revert_patch(report.changes),
            "baseline_config": baseline.config,
            "recreate": change.op == "delete",
        }
    return Decision.caused_by(
        finding,
        source=SOURCE,
        resource_id=finding.resource_id,
        decision_type="accept_drift" if accept else "revert_drift",
        origin="drift",
        confidence=1.0,
        reasoning=_reasoning(report, finding, accept),
        params=params,
        requires_approval=not auto,
        severity=finding.severity,
        expected_impact={"drift_ratio": -report.ratio},
    )
