"""Settings of the policy gate, and the policy types it applies by default."""

from __future__ import annotations

from pydantic import BaseModel, Field

from policies.source import POLICY_TYPES

__all__ = ["GATE_POLICY_TYPES", "GateConfig"]

GATE_POLICY_TYPES = tuple(t for t in POLICY_TYPES if t not in ("access", "infrastructure"))
"""Policy types the gate applies by default: the registry's list (`policies.source`) without
`access` (it guards the HTTP API) and `infrastructure` (it judges Terraform plans)."""


class GateConfig(BaseModel):
    """Settings of the policy gate."""

    approval_ttl_seconds: float = Field(default=3600.0, gt=0)
    """A pending approval expires after this long."""
    policy_types: list[str] | None = Field(default_factory=lambda: list(GATE_POLICY_TYPES))
    """Policy types evaluated for decisions (None: every enabled policy)."""
    migration_window_seconds: float = Field(default=3600.0, gt=0)
    """Window of the per-resource migration counter passed as `context.migrations_last_hour`."""
    incident_score: float = Field(default=0.9, ge=0, le=1)
    """An anomaly insight with at least this score flags the resource as in an incident."""
    incident_ttl_seconds: float = Field(default=900.0, gt=0)
    """How long an anomaly keeps the incident flag up after the last one."""
    skip_no_action: bool = True
    """Allowed `no_action` decisions produce a verdict but no Action."""
    agent_role: str = "agent"
    """`input.subject.role` of automated proposers."""
    source: str = "novacron.gate"
    """`source` of the events the gate emits."""
