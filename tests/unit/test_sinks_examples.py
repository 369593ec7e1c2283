"""One realistic example of every event type, shared by the history tests (no tests here)."""

from __future__ import annotations

from datetime import UTC, datetime

from schemas import (
    Action,
    Approval,
    ComplianceResult,
    ConfigChange,
    DeadLetter,
    Decision,
    DesiredState,
    DriftFinding,
    Event,
    GitSync,
    Insight,
    MetricSample,
    ModelPromotion,
    Outcome,
    PolicyVerdict,
    PolicyVersion,
    action_id_for,
)

T0 = datetime(2026, 5, 6, 7, 8, 9, 123000, tzinfo=UTC)


def _examples() -> dict[str, Event]:
    sample = MetricSample(
        event_time=T0, source="sim", resource_id="vm-1", cpu_usage=91.5, memory_usage=40.25,
        network_latency_ms=120.0, active_vms=3, labels={"region": "eu"}, extra={"disk": 0.5},
    )
    decision = Decision.caused_by(
        sample, event_time=T0, resource_id="svc-a", decision_type="scale_up", confidence=0.8,
        reasoning="cpu high", expected_impact={"cpu_usage": -20.0}, params={"delta": 1},
        state={"cpu": 0.9}, model_version="dqn-3",
    )
    action = Action.caused_by(
        decision, event_time=T0, action_id=action_id_for(decision.event_id), resource_id="svc-a",
        action_type="scale_up", params={"delta": 1}, decision_id=decision.event_id,
    )
    events: list[Event] = [
        sample,
        ConfigChange(event_time=T0, resource_id="aws_s3_bucket.logs", resource_type="aws_s3_bucket",
                     provider="aws", op="update", config={"acl": "private", "tags": {"a": 1}}),
        DesiredState(event_time=T0, resource_id="aws_s3_bucket.logs",
                     resource_type="aws_s3_bucket", config={"acl": "private"}, revision="abc123"),
        PolicyVersion(event_time=T0, policy_id="p1", name="limits", version=2,
                      rego="package p1\nallow := true", content_hash="f" * 64),
        Insight.caused_by(sample, event_time=T0, resource_id="vm-1", kind="forecast",
                          metric="cpu_usage", value=80.0, lower=70.0, upper=90.0, horizon=5,
                          actions=["scale_up"], details={"mae": 1.5}),
        decision,
        PolicyVerdict.caused_by(decision, event_time=T0, decision_id=decision.event_id,
                                resource_id="svc-a", outcome="allow", allowed=True,
                                reasons=["ok"], policy_versions={"p1": 2}, latency_ms=0.4),
        Approval.caused_by(decision, event_time=T0, request_id=decision.event_id,
                           status="pending", expires_at=datetime(2026, 5, 6, 8, 0, 0, 456000,
                                                                 tzinfo=UTC)),
        action,
        Outcome.caused_by(action, event_time=T0, action_id=action.action_id, status="succeeded",
                          duration_ms=12.5, output={"vms": 4}, action_type="scale_up"),
        DriftFinding(event_time=T0, resource_id="aws_s3_bucket.logs", severity="HIGH",
                     drift_ratio=0.3, changed_fields=["/acl"],
                     changes=[{"path": "/acl", "op": "changed", "old": "private",
                               "new": "public"}]),
        ComplianceResult(event_time=T0, resource_id="aws_s3_bucket.logs", control_id="s3-public",
                         standards=["cis:2.1.1", "pci-dss:3.4"], severity="CRITICAL",
                         passed=False, status="open", message="public"),
        DeadLetter(event_time=T0, source_topic="novacron.metrics", partition=1, offset=42,
                   reason="not valid JSON", error_kind="decode", raw=b"\x00\xffnot json",
                   raw_size=10),
        GitSync(event_time=T0, repo="config", branch="main", commit="c0ffee" * 6 + "abcd",
                author="Ada <ada@example.com>", message="raise the limit", status="applied",
                serving="c0ffee" * 6 + "abcd", added=["policy/p1"], changed=["baseline/vm-1"],
                manifest={"policy/p1": "a" * 40, "baseline/vm-1": "b" * 40}),
        ModelPromotion(event_time=T0, source="novacron.decision", status="promoted",
                       candidate="v0004", base_version="shipped-v0003",
                       deployed_version="shipped-v0003", grad_steps=2000,
                       candidate_violation_pct=0.5, deployed_violation_pct=0.75,
                       candidate_cost=12.5, deployed_cost=13.25, budget_pct=1.0,
                       slo_latency_ms=250.0, services=2, ticks=2880,
                       window_start=datetime(2026, 5, 5, 7, 8, 9, tzinfo=UTC), window_end=T0,
                       reason="meets the 1% budget (worst 0.5%) at 12.50 <= 13.25"),
    ]
    return {e.event_type: e for e in events}


EXAMPLES: dict[str, Event] = _examples()
"""Event type → an example with non-default values in most fields."""
