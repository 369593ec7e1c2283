"""Typed configuration of drift detection: ignores, list modes, sensitive paths, remediation."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator

from agents.drift.rules import ListRule
from agents.drift.severity import DEFAULT_SENSITIVE_PATHS, DEFAULT_SENSITIVE_TYPES, SeverityBands
from schemas.findings import Severity

__all__ = ["APPROVAL_SEVERITIES", "DEFAULT_LIST_RULES", "DriftConfig"]

APPROVAL_SEVERITIES: frozenset[str] = frozenset({"CRITICAL", "HIGH"})
"""SPEC §4.4: remediations of these severities always wait for a human."""

DEFAULT_LIST_RULES: tuple[ListRule, ...] = (
    # Firewall rules and id lists have no meaningful order: providers return them re-sorted.
    ListRule(path="**/ingress", mode="set"),
    ListRule(path="**/egress", mode="set"),
    ListRule(path="**/cidr_blocks", mode="set"),
    ListRule(path="**/ipv6_cidr_blocks", mode="set"),
    ListRule(path="**/security_groups", mode="set"),
    ListRule(path="**/vpc_security_group_ids", mode="set"),
    ListRule(path="**/subnet_ids", mode="set"),
    ListRule(path="**/availability_zones", mode="set"),
    ListRule(path="**/source_ranges", mode="set"),
    # Kubernetes lists are merged by name: an order change is not drift.
    ListRule(path="**/containers", mode="key", key="name"),
    ListRule(path="**/env", mode="key", key="name"),
    ListRule(path="**/volumes", mode="key", key="name"),
)


class DriftConfig(BaseModel):
    """Everything the drift detector can be told."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    auto_remediate: frozenset[Severity] = frozenset()
    """Severities whose remediation runs without approval (only MEDIUM, LOW, INFO are allowed)."""
    sensitive_paths: tuple[str, ...] = DEFAULT_SENSITIVE_PATHS
    """Path patterns (case-insensitive) whose change makes a finding CRITICAL."""
    sensitive_resource_types: tuple[str, ...] = DEFAULT_SENSITIVE_TYPES
    """Resource-type globs whose every change is CRITICAL."""
    list_rules: tuple[ListRule, ...] = DEFAULT_LIST_RULES
    """How lists are compared per resource type and path (the first matching rule wins)."""
    ignore_file: Path | None = None
    """Extra static ignore rules (YAML) read at start, e.g. a mounted ConfigMap; rules added at
    run time live in the `drift-ignores` topic (`novacron drift ignore add`)."""
    default_ignores: bool = True
    """Apply agents/drift/default_ignores.yaml (computed fields, timestamps, ids)."""
    empty_equivalent: bool = True
    """Treat absent, null, "", [] and {} as the same value."""
    bands: SeverityBands = Field(default_factory=SeverityBands)
    """Drift-ratio thresholds of the severities."""
    revert_runbook: str = "drift-revert"
    """Runbook the revert remediation names in its params (must be the one the executor maps
    revert_drift to, or the gate refuses the decision)."""
    accept_sources: frozenset[str] = frozenset()
    """ConfigChange.change_source values whose drift is proposed for acceptance, not revert."""
    dedupe: bool = True
    """Do not repeat a finding while the same drift persists across config events."""
    max_changes: int = Field(default=500, ge=1)
    """Cap of `changes` entries carried in one finding (changed_fields stays complete)."""

    @field_validator("auto_remediate")
    @classmethod
    def _never_critical(cls, value: frozenset[str]) -> frozenset[str]:
        bad = value & APPROVAL_SEVERITIES
        if bad:
            raise ValueError(f"{sorted(bad)} remediations always require approval (SPEC §4.4)")
        return value
