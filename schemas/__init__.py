"""Event contracts: pydantic models, their Avro schemas and the wire codec."""

from __future__ import annotations

from schemas.decisions import (
    ACTION_TYPES,
    DQN_ACTIONS,
    Action,
    Approval,
    Decision,
    Insight,
    Outcome,
    PolicyVerdict,
    action_id_for,
)
from schemas.envelope import Event, utc_now
from schemas.findings import SEVERITIES, ComplianceResult, DeadLetter, DriftFinding
from schemas.gitops import GitSync
from schemas.promotion import ModelPromotion
from schemas.telemetry import ConfigChange, DesiredState, MetricSample, PolicyVersion

EVENT_TYPES: dict[str, type[Event]] = {
    cls.event_type: cls
    for cls in (
        MetricSample,
        ConfigChange,
        DesiredState,
        PolicyVersion,
        Insight,
        Decision,
        PolicyVerdict,
        Approval,
        Action,
        Outcome,
        DriftFinding,
        ComplianceResult,
        DeadLetter,
        GitSync,
        ModelPromotion,
    )
}
"""Every event type by name."""

TOPIC_TYPES: dict[str, type[Event]] = {cls.topic: cls for cls in EVENT_TYPES.values()}
"""Logical topic name (without prefix) → the event type it carries."""

__all__ = [
    "ACTION_TYPES",
    "DQN_ACTIONS",
    "EVENT_TYPES",
    "SEVERITIES",
    "TOPIC_TYPES",
    "Action",
    "Approval",
    "ComplianceResult",
    "ConfigChange",
    "DeadLetter",
    "Decision",
    "DesiredState",
    "DriftFinding",
    "Event",
    "GitSync",
    "Insight",
    "MetricSample",
    "ModelPromotion",
    "Outcome",
    "PolicyVerdict",
    "PolicyVersion",
    "action_id_for",
    "utc_now",
]
