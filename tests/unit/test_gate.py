"""Policy gate: allow → Action, deny → verdict only, approval → pending → released/expired."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from agents.gate import GateConfig, PolicyGate
from policies.engine import RegoEngine, StaticSource
from policies.source import load_directory
from schemas import Action, Approval, Decision, Insight, action_id_for

POLICY_DIR = Path(__file__).resolve().parents[2] / "policies" / "rego"
T0 = datetime(2026, 11, 2, 12, 0, tzinfo=UTC)


def make_gate(**cfg: float) -> PolicyGate:
    return PolicyGate(RegoEngine(StaticSource(load_directory(POLICY_DIR))), GateConfig(**cfg))


def decision(kind: str = "scale_up", **fields: object) -> Decision:
    return Decision(resource_id="web", decision_type=kind, source="novacron.dqn", **fields)  # type: ignore[arg-type]


def test_allowed_decision_becomes_action() -> None:
    gate = make_gate()
    d = decision(params={"delta": 1})
    res = gate.evaluate(d, {"resource": {"environment": "staging", "active_vms": 3}}, now=T0)
    assert res.verdict.outcome == "allow" and res.verdict.allowed
    assert res.action is not None and res.approval is None
    assert res.action.action_id == action_id_for(d.event_id)
    assert res.action.causation_id == d.event_id and res.action.correlation_id == d.correlation_id
    assert res.verdict.causation_id == d.event_id and res.verdict.decision_id == d.event_id
    assert "novacron.safety.actions" in res.verdict.policy_versions
    assert len(res.verdict.input_hash) == 64
    assert [type(e).__name__ for e in res.events] == ["PolicyVerdict", "Action"]


def test_scale_down_in_incident_is_denied_from_anomaly_insight() -> None:
    gate = make_gate()
    gate.observe_insight(Insight(resource_id="web", kind="anomaly", score=0.97, event_time=T0))
    res = gate.evaluate(decision("scale_down"), now=T0 + timedelta(minutes=5))
    assert res.verdict.outcome == "deny" and res.action is None and res.approval is None
    assert any("open incident" in r for r in res.verdict.violations)
    later = gate.evaluate(decision("scale_down"), now=T0 + timedelta(hours=2))
    assert later.verdict.outcome == "allow"


def test_migration_counter_limits_migrations_per_hour() -> None:
    gate = make_gate()
    ctx = {"max_migrations_per_hour": 2}
    outcomes = [
        gate.evaluate(decision("migrate_vm"), ctx, now=T0 + timedelta(minutes=i)).verdict.outcome
        for i in range(3)
    ]
    assert outcomes == ["allow", "allow", "deny"]
    assert (
        gate.evaluate(decision("migrate_vm"), ctx, now=T0 + timedelta(minutes=61)).verdict.outcome
        == "allow"
    )


def test_production_change_waits_for_approval_then_acts() -> None:
    gate = make_gate()
    d = decision()
    res = gate.evaluate(d, {"resource": {"environment": "production"}}, now=T0)
    assert res.verdict.outcome == "needs_approval" and res.action is None
    pending = res.approval
    assert pending is not None and pending.status == "pending" and pending.request_id == d.event_id
    assert pending.expires_at == T0 + timedelta(hours=1)
    assert gate.pending() == [pending]
    approved = Approval.caused_by(pending, request_id=d.event_id, status="approved", by="ana")
    events = gate.on_approval(approved, now=T0 + timedelta(minutes=3))
    assert len(events) == 1 and isinstance(events[0], Action)
    assert (
        events[0].action_id == action_id_for(d.event_id)
        and events[0].causation_id == approved.event_id
    )
    assert gate.pending() == [] and gate.on_approval(approved, now=T0) == []


def test_rejection_drops_pending_item() -> None:
    gate = make_gate()
    d = decision(requires_approval=True)
    res = gate.evaluate(d, now=T0)
    assert res.verdict.outcome == "needs_approval"
    assert (
        gate.on_approval(Approval(request_id=d.event_id, status="rejected", by="ana"), now=T0) == []
    )
    assert gate.pending() == []


def test_pending_items_expire_and_late_approval_does_not_act() -> None:
    gate = make_gate(approval_ttl_seconds=60)
    first, second = decision(requires_approval=True), decision(requires_approval=True)
    gate.evaluate(first, now=T0)
    gate.evaluate(second, now=T0 + timedelta(seconds=50))
    expired = gate.expire(T0 + timedelta(seconds=61))
    assert [(a.request_id, a.status) for a in expired] == [(first.event_id, "expired")]
    late = gate.on_approval(
        Approval(request_id=second.event_id, status="approved"), now=T0 + timedelta(seconds=200)
    )
    assert len(late) == 1 and isinstance(late[0], Approval) and late[0].status == "expired"
    assert gate.pending() == []


def test_shadow_decisions_never_become_actions() -> None:
    gate = make_gate()
    allowed = gate.evaluate(decision(mode="shadow"), now=T0)
    gated = gate.evaluate(
        decision(mode="shadow"), {"resource": {"environment": "production"}}, now=T0
    )
    assert allowed.verdict.outcome == "allow" and allowed.action is None
    assert gated.verdict.outcome == "needs_approval" and gated.approval is None
    assert gate.pending() == []


def test_engine_error_is_an_error_verdict() -> None:
    gate = make_gate(policy_types=["no-such-type"])  # type: ignore[arg-type]
    res = gate.evaluate(decision(), now=T0)
    assert res.verdict.outcome == "error" and not res.verdict.allowed and res.action is None


def test_snapshot_restore_keeps_pending_and_counters() -> None:
    gate = make_gate()
    d = decision(requires_approval=True)
    gate.evaluate(d, now=T0)
    gate.evaluate(decision("migrate_vm"), now=T0)
    clone = make_gate()
    clone.restore(gate.snapshot())
    assert [a.request_id for a in clone.pending()] == [d.event_id]
    assert clone.migrations_last_window("web", T0 + timedelta(minutes=1)) == 1


def test_pending_items_keep_what_was_approved_across_restore() -> None:
    gate = make_gate()
    d = decision(requires_approval=True, params={"delta": 2})
    gate.evaluate(d, now=T0)
    state = gate.snapshot()
    resolved = {"delta": 2, "max_replicas": 20, "config_branch": "main"}
    assert state["pending"][0]["resolved"]["variables"] == resolved
    clone = make_gate()
    clone.restore(state)
    [action] = clone.on_approval(Approval(request_id=d.event_id, status="approved"), now=T0)
    assert isinstance(action, Action) and action.params == resolved
    assert action.runbook == "scale-up" and action.runbook_hash
    older = {**state, "pending": [{k: v for k, v in row.items() if k != "resolved"}
                                  for row in state["pending"]]}
    legacy = make_gate()
    legacy.restore(older)  # snapshots from before resolution are resolved on restore
    assert [a.request_id for a in legacy.pending()] == [d.event_id]


def test_gate_policy_types_come_from_the_registry_list() -> None:
    from agents.gate import GATE_POLICY_TYPES
    from policies.source import POLICY_TYPES

    assert GATE_POLICY_TYPES == tuple(t for t in POLICY_TYPES if t not in ("access",
                                                                          "infrastructure"))
    assert GateConfig().policy_types == list(GATE_POLICY_TYPES)
