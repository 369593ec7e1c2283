"""Events of the closed loop: insights, decisions, verdicts, approvals, actions and outcomes."""

from __future__ import annotations

import hashlib
import uuid
from datetime import datetime
from typing import Literal

from pydantic import Field

from schemas.edge import (
    Bool,
    Float,
    FloatMap,
    Identifier,
    Int,
    IntMap,
    JsonObject,
    TextList,
)
from schemas.envelope import Event

__all__ = [
    "ACTION_TYPES",
    "DQN_ACTIONS",
    "Action",
    "Approval",
    "Decision",
    "Insight",
    "Outcome",
    "PolicyVerdict",
    "action_id_for",
]

DQN_ACTIONS: tuple[str, ...] = (
    "no_action",
    "scale_up",
    "scale_down",
    "migrate_vm",
    "rebalance_load",
    "adjust_policy",
    "enable_feature",
    "disable_feature",
)
"""The eight actions of the decision engine, in the DQN's output order."""

ACTION_TYPES: tuple[str, ...] = DQN_ACTIONS + (
    "revert_drift",
    "accept_drift",
    "remediate_compliance",
    "apply_recommendation",
    "run_runbook",
)
"""Every action type the executor knows."""

_ACTION_NS = uuid.UUID("6f1c1d8e-8f0b-4c51-9a55-2f4c8f0e7a10")


_ACTION_NS_BYTES = _ACTION_NS.bytes


def action_id_for(decision_id: str) -> str:
    """Deterministic action id for a decision, so a re-sent decision cannot act twice.

    `str(uuid.uuid5(_ACTION_NS, decision_id))` (RFC 4122 name-based, SHA-1) without building
    UUID objects: it runs once per decision on the decision path."""
    name = _ACTION_NS_BYTES + decision_id.encode()
    digest = bytearray(hashlib.sha1(name, usedforsecurity=False).digest()[:16])
    digest[6] = (digest[6] & 0x0F) | 0x50  # version 5
    digest[8] = (digest[8] & 0x3F) | 0x80  # RFC 4122 variant
    h = digest.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


class Insight(Event):
    """What the optimizer learned: a forecast, an anomaly or a recommendation."""

    event_type = "Insight"
    topic = "insights"

    resource_id: Identifier = Field(min_length=1, max_length=256)
    """Resource the insight is about."""
    kind: Literal["forecast", "anomaly", "recommendation"]
    """Which kind of insight."""
    metric: Identifier | None = Field(default=None, max_length=64)
    """Metric the insight is about (cpu_usage, cost_per_hour, …)."""
    value: Float | None = None
    """Forecast value, anomaly score or recommended target."""
    lower: Float | None = None
    """Lower bound of the forecast's uncertainty band."""
    upper: Float | None = None
    """Upper bound of the forecast's uncertainty band."""
    horizon: Int | None = Field(default=None, ge=0)
    """Forecast horizon in sampling intervals."""
    score: Float | None = Field(default=None, ge=0, le=1)
    """Calibrated anomaly score in [0, 1]."""
    threshold: Float | None = None
    """Anomaly threshold the score was compared to."""
    confidence: Float | None = Field(default=None, ge=0, le=1)
    """Confidence of a recommendation."""
    estimated_improvement: Float | None = None
    """Estimated improvement of a recommendation, percent."""
    actions: TextList = Field(default_factory=list)
    """Concrete actions a recommendation proposes."""
    dry_run: Bool = True
    """Recommendations are dry runs unless auto-apply is allowed."""
    details: JsonObject = Field(default_factory=dict)
    """Model quality (MAE/MAPE), explanation and other details."""


class Decision(Event):
    """A proposed action (from the DQN, the optimizer, drift or compliance) for the policy gate."""

    event_type = "Decision"
    topic = "decisions"

    resource_id: Identifier = Field(min_length=1, max_length=512)
    """Service, scaling group or resource the decision is about."""
    decision_type: Identifier = Field(min_length=1, max_length=64)
    """One of ACTION_TYPES."""
    origin: Literal["dqn", "optimizer", "drift", "compliance", "manual", "alert", "gitops"] = "dqn"
    """Which agent proposed it (`alert`: an Alertmanager alert mapped to a runbook; `gitops`:
    a rollback of a deploy followed by an anomaly or SLO breach)."""
    confidence: Float = Field(default=1.0, ge=0, le=1)
    """Confidence of the proposer."""
    reasoning: str = Field(default="", max_length=4096)
    """Why, in words a person can read."""
    expected_impact: FloatMap = Field(default_factory=dict)
    """Expected change of metrics (e.g. cpu_usage: -20)."""
    state: FloatMap = Field(default_factory=dict)
    """The (normalised) state the decision was taken in."""
    params: JsonObject = Field(default_factory=dict)
    """Parameters for the action (delta VMs, fields to revert, runbook, …)."""
    mode: Literal["live", "shadow"] = "live"
    """Shadow decisions are recorded and scored but never become actions."""
    requires_approval: Bool = False
    """The proposer asks for human approval regardless of policy."""
    severity: Identifier | None = Field(default=None, max_length=16)
    """Severity of the underlying finding, for remediations."""
    model_version: Identifier | None = Field(default=None, max_length=64)
    """Model checkpoint that decided."""


class PolicyVerdict(Event):
    """The policy gate's verdict on a decision: one decision-log row."""

    event_type = "PolicyVerdict"
    topic = "verdicts"

    decision_id: Identifier = Field(min_length=1, max_length=128)
    """The decision (or request) evaluated."""
    resource_id: Identifier = Field(default="", max_length=512)
    """Resource of the decision."""
    outcome: Literal["allow", "deny", "needs_approval", "error"]
    """allow → action; deny → recorded; needs_approval → pending approval; error → fail closed."""
    allowed: Bool
    """Whether the decision may proceed (now or after approval)."""
    reasons: TextList = Field(default_factory=list)
    """Why, from the policies."""
    violations: TextList = Field(default_factory=list)
    """Policy rules that were violated."""
    warnings: TextList = Field(default_factory=list)
    """Violations of warn/audit policies (allowed but recorded)."""
    policy_versions: IntMap = Field(default_factory=dict)
    """Policy id → version used."""
    input_hash: Identifier = Field(default="", max_length=128)
    """SHA-256 of the canonical evaluation input."""
    latency_ms: Float = Field(default=0.0, ge=0)
    """Evaluation latency."""


class Approval(Event):
    """A human decision on a pending item (or the pending item itself, or its expiry)."""

    event_type = "Approval"
    topic = "approvals"

    request_id: Identifier = Field(min_length=1, max_length=128)
    """The decision id waiting for approval (the Kafka key)."""
    status: Literal["pending", "approved", "rejected", "expired"]
    """Lifecycle state of the approval request."""
    by: Identifier = Field(default="", max_length=256)
    """Who approved or rejected."""
    reason: str = Field(default="", max_length=4096)
    """Why."""
    expires_at: datetime | None = None
    """When a pending item expires."""
    resource_id: Identifier = Field(default="", max_length=512)
    """Resource of the decision."""

    @property
    def key(self) -> str:
        return self.request_id


class Action(Event):
    """An approved action for the executor (keyed by action id)."""

    event_type = "Action"
    topic = "actions"

    action_id: Identifier = Field(min_length=1, max_length=128)
    """Idempotency key: the executor runs an action id at most once."""
    resource_id: Identifier = Field(min_length=1, max_length=512)
    """Target resource."""
    action_type: Identifier = Field(min_length=1, max_length=64)
    """One of ACTION_TYPES."""
    params: JsonObject = Field(default_factory=dict)
    """The runbook variables the gate approved: typed, after defaults and overrides."""
    decision_id: Identifier = Field(default="", max_length=128)
    """The decision this action carries out."""
    runbook: Identifier | None = Field(default=None, max_length=128)
    """The runbook the gate resolved (configured for the action type, or a selectable one)."""
    runbook_hash: Identifier | None = Field(default=None, max_length=64)
    """SHA-256 of the runbook content the gate approved; the executor refuses any other."""
    dry_run: Bool = False
    """Plan only, change nothing."""

    @property
    def key(self) -> str:
        return self.action_id


class Outcome(Event):
    """Progress and result of an action or one of its steps."""

    event_type = "Outcome"
    topic = "outcomes"

    action_id: Identifier = Field(min_length=1, max_length=128)
    """Action this outcome belongs to (the Kafka key)."""
    scope: Literal["action", "step", "alert"] = "action"
    """Whole action or one step (both from the executor only), or `alert`: the alert that
    triggered the action resolved (recorded by the alert receiver on the action's chain)."""
    step_id: Identifier | None = Field(default=None, max_length=128)
    """Step id for step outcomes."""
    status: Literal[
        "started",
        "succeeded",
        "succeeded_with_failures",
        "failed",
        "skipped",
        "compensated",
        "timed_out",
        "sla_breached",
        "waiting_approval",
        "resolved",
    ]
    """What happened. A workflow (scope action) ends succeeded (every step did, or was skipped by
    its own condition), succeeded_with_failures (the critical steps did, a non-critical one did
    not: listed in output.failed_steps), failed or compensated (a critical step did not), or
    skipped (already executed, dry run)."""
    attempt: Int = Field(default=1, ge=1)
    """Attempt number of the step."""
    duration_ms: Float | None = Field(default=None, ge=0)
    """How long it took."""
    error: str | None = Field(default=None, max_length=8192)
    """Error message when it failed (secrets redacted)."""
    output: JsonObject = Field(default_factory=dict)
    """Result data (secrets redacted)."""
    resource_id: Identifier = Field(default="", max_length=512)
    """Target resource."""
    action_type: Identifier = Field(default="", max_length=64)
    """Action type, for reports."""
    simulated: Bool = False
    """The runbook's effects were simulated (the `fake_infra` test backend), not real."""

    @property
    def key(self) -> str:
        return self.action_id
