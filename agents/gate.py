"""The policy gate: every decision passes the policies before it becomes an action."""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from agents.gate_config import GATE_POLICY_TYPES, GateConfig
from agents.gate_result import GateResult, Ready
from agents.gate_state import GateState, Pending
from policies.engine import PolicyEngine
from policies.result import EvalResult
from runbooks.loader import Library
from runbooks.resolve import RefusedAction, ResolvedAction, Resolver
from schemas import (
    Action,
    Approval,
    Decision,
    Event,
    Insight,
    PolicyVerdict,
    action_id_for,
    utc_now,
)

__all__ = ["GATE_POLICY_TYPES", "GateConfig", "GateResult", "PolicyGate", "Ready"]

class PolicyGate:
    """Pure gate logic: resolve what would run, evaluate it, hold pending approvals, release or
    drop them, expire them. Every decision gets a verdict, whatever goes wrong."""

    def __init__(
        self,
        engine: PolicyEngine,
        config: GateConfig | None = None,
        resolver: Resolver | None = None,
    ) -> None:
        self.engine = engine
        self.config = config or GateConfig()
        self.resolver = resolver or Resolver(Library().get)
        self.state = GateState()
        """Pending approvals, migration counters and incident flags (per resource)."""

    # --- observations feeding the action-safety context --------------------------------------
    def observe_insight(self, insight: Insight) -> None:
        """Raise a resource's incident flag on a high-scoring anomaly."""
        if insight.kind == "anomaly" and (insight.score or 0.0) >= self.config.incident_score:
            until = insight.event_time + timedelta(seconds=self.config.incident_ttl_seconds)
            current = self.state.incidents.get(insight.resource_id)
            self.state.incidents[insight.resource_id] = max(until, current or until)

    def observe_action(self, action: Action, implements: tuple[str, ...] = ()) -> None:
        """Count a migration: an action of that type or whose runbook migrates (the gate calls
        it for the actions it releases)."""
        if action.action_type == "migrate_vm" or "migrate_vm" in implements:
            self.state.migrations.setdefault(action.resource_id, deque()).append(
                action.event_time
            )

    def migrations_last_window(self, resource_id: str, now: datetime) -> int:
        """Migrations of a resource within the configured window before now."""
        times = self.state.migrations.get(resource_id)
        if not times:
            return 0
        horizon = now - timedelta(seconds=self.config.migration_window_seconds)
        while times and times[0] <= horizon:
            times.popleft()
        return len(times)

    def in_incident(self, resource_id: str, now: datetime) -> bool:
        """Whether a recent anomaly flags the resource."""
        until = self.state.incidents.get(resource_id)
        return until is not None and until > now

    # --- evaluation ------------------------------------------------------------------------------
    def build_input(
        self,
        decision: Decision,
        context: Mapping[str, Any] | None,
        now: datetime,
        resolved: ResolvedAction | None = None,
    ) -> dict[str, Any]:
        """The Rego input: subject (the proposer), action, resource, runbook and context.

        `runbook` is what would run (id, content hash, the action types it implements, its
        parameter schema) and `context.params` its variables, typed, after defaults and
        overrides. `context["resource"]` adds facts about the resource (environment, region,
        labels, …); the other keys of `context` go into `input.context` and override the gate's
        own counters, never `params`.
        """
        resolved = resolved or self.resolver.resolve(decision.decision_type, decision.params)
        extra = dict(context or {})
        resource = {"id": decision.resource_id, **dict(extra.pop("resource", None) or {})}
        incident = self.in_incident(decision.resource_id, now) or bool(extra.pop("incident", False))
        ctx: dict[str, Any] = {
            "confidence": decision.confidence,
            "mode": decision.mode,
            "origin": decision.origin,
            "requires_approval": decision.requires_approval,
            "severity": decision.severity,
            "incident": incident,
            "migrations_last_hour": self.migrations_last_window(decision.resource_id, now),
        }
        ctx.update(extra)
        ctx["params"] = resolved.variables
        subject = {
            "user": decision.source,
            "role": self.config.agent_role,
            "origin": decision.origin,
        }
        return {
            "subject": subject,
            "action": decision.decision_type,
            "resource": resource,
            "runbook": resolved.policy_view(),
            "context": ctx,
        }

    def evaluate(
        self,
        decision: Decision,
        context: Mapping[str, Any] | None = None,
        *,
        now: datetime | None = None,
        ready: Ready | None = None,
    ) -> GateResult:
        """Verdict for a decision, plus the Action or the pending Approval (needs approval).

        Params that may not run as asked (another runbook, unknown or fixed parameters, wrong
        types or bounds) are denied before any policy runs; any failure is an error verdict.
        A `ready` result (`precompute`) is used only if it was computed for this very input.
        """
        return self.evaluate_batch([(decision, context)], now=now, ready=ready)[0]

    def precompute(self, items: Sequence[tuple[Decision, Mapping[str, Any] | None]], *,
                   now: datetime | None = None) -> dict[str, tuple[dict[str, Any],
                                                                   EvalResult | Exception]]:
        """Engine results for many decisions' inputs as built now, in one engine call.

        Nothing is decided or changed: `evaluate(..., ready=)` takes a result only while the
        decision's rebuilt input is equal to the one it was computed for, so a decision whose
        input an earlier one changed (a migration counted, an incident raised) is evaluated again.
        """
        now = now or utc_now()
        seen = Counter(d.event_id for d, _ in items)  # a repeated id (e.g. forged) is asked alone
        built = [(d.event_id, prep[1]) for d, c in items if seen[d.event_id] == 1
                 and not isinstance(prep := self._prepare(d, c, now), GateResult)]
        results = self._evaluate_values([v for _, v in built])
        return {eid: (value, res) for (eid, value), res in zip(built, results, strict=True)}

    def evaluate_batch(
        self,
        items: Sequence[tuple[Decision, Mapping[str, Any] | None]],
        *,
        now: datetime | None = None,
        ready: Ready | None = None,
    ) -> list[GateResult]:
        """`evaluate` for a stream batch: one engine call per round, results in input order.

        A released migration raises `migrations_last_hour` for the later decisions on the same
        resource, so those go to the next round with rebuilt inputs, exactly as one by one.
        """
        now = now or utc_now()
        out: dict[int, GateResult] = {}
        todo = list(range(len(items)))
        while todo:
            todo = self._round(items, todo, now, out, ready or {})
        return [out[i] for i in range(len(items))]

    def _round(self, items: Sequence[tuple[Decision, Mapping[str, Any] | None]],
               todo: list[int], now: datetime, out: dict[int, GateResult], ready: Ready
               ) -> list[int]:
        prepared: dict[int, tuple[ResolvedAction, dict[str, Any]]] = {}
        for i in todo:
            built = self._prepare(*items[i], now)
            if isinstance(built, GateResult):
                out[i] = built
            else:
                prepared[i] = built
        results = self._reuse_or_evaluate(
            [items[i][0].event_id for i in prepared], [v for _, v in prepared.values()], ready)
        migrated: set[str] = set()
        for n, (i, (resolved, _)) in enumerate(prepared.items()):
            decision = items[i][0]
            if decision.resource_id in migrated:  # its input counted one migration too few
                return list(prepared)[n:]
            out[i] = done = self._finish(decision, resolved, results[n], now)
            if done.action is not None and "migrate_vm" in (done.action.action_type,
                                                            *resolved.implements):
                migrated.add(decision.resource_id)
        return []

    def _prepare(self, decision: Decision, context: Mapping[str, Any] | None, now: datetime
                 ) -> GateResult | tuple[ResolvedAction, dict[str, Any]]:
        try:
            resolved = self.resolver.resolve(decision.decision_type, decision.params)
        except RefusedAction as exc:
            return GateResult(self.refusal(decision, f"runbook: {exc}", "deny"))
        except Exception as exc:  # a library problem: fail closed, and say so
            return GateResult(self.refusal(decision, _failure("runbook resolution", exc)))
        try:
            return resolved, self.build_input(decision, context, now, resolved)
        except Exception as exc:  # the gate never drops a decision without a verdict
            return GateResult(self.refusal(decision, _failure("policy evaluation", exc)))

    def _reuse_or_evaluate(self, ids: list[str], values: list[dict[str, Any]], ready: Ready
                           ) -> list[EvalResult | Exception]:
        out: list[EvalResult | Exception | None] = [
            hit[1] if (hit := ready.get(i)) is not None and hit[0] == v else None
            for i, v in zip(ids, values, strict=True)]
        missing = [n for n, r in enumerate(out) if r is None]
        for n, result in zip(missing, self._evaluate_values([values[n] for n in missing]),
                             strict=True):
            out[n] = result
        return [r for r in out if r is not None]

    def _evaluate_values(self, values: list[dict[str, Any]]) -> list[EvalResult | Exception]:
        if not values:
            return []
        types = self.config.policy_types
        try:
            return list(self.engine.evaluate_batch(values, types=types))
        except Exception:  # one input broke the whole call: each input alone, so it fails alone
            out: list[EvalResult | Exception] = []
            for value in values:
                try:
                    out.append(self.engine.evaluate(value, types=types))
                except Exception as exc:
                    out.append(exc)
            return out

    def _finish(self, decision: Decision, resolved: ResolvedAction,
                result: EvalResult | Exception, now: datetime) -> GateResult:
        try:
            if isinstance(result, Exception):
                raise result
            verdict = self._verdict(decision, result)
        except Exception as exc:  # the gate never drops a decision without a verdict
            return GateResult(self.refusal(decision, _failure("policy evaluation", exc)))
        if decision.mode == "shadow" or verdict.outcome in ("deny", "error"):
            return GateResult(verdict, result=result)
        if verdict.outcome == "needs_approval":
            approval = self._hold(decision, resolved, verdict, now)
            return GateResult(verdict, approval=approval, result=result)
        if resolved.runbook_id is None and self.config.skip_no_action:
            return GateResult(verdict, result=result)
        action = self._act(decision, resolved, decision, now)
        return GateResult(verdict, action=action, result=result)

    def refusal(self, decision: Decision, reason: str, outcome: str = "error") -> PolicyVerdict:
        """A deny or error verdict without a policy evaluation (refused params, failures)."""
        return PolicyVerdict.caused_by(
            decision,
            decision_id=decision.event_id,
            resource_id=decision.resource_id,
            outcome="deny" if outcome == "deny" else "error",
            allowed=False,
            reasons=[reason[:4096]],
            violations=[reason[:4096]] if outcome == "deny" else [],
            source=self.config.source,
        )

    def _verdict(self, decision: Decision, result: EvalResult) -> PolicyVerdict:
        reasons = list(result.reasons)
        if decision.requires_approval:
            reasons.append("the proposer asked for human approval")
        if not result.allowed:
            outcome = "error" if result.error else "deny"
        elif result.needs_approval or decision.requires_approval:
            outcome = "needs_approval"
        else:
            outcome = "allow"
        return PolicyVerdict.caused_by(
            decision,
            decision_id=decision.event_id,
            resource_id=decision.resource_id,
            outcome=outcome,
            allowed=result.allowed,
            reasons=reasons,
            violations=result.violations,
            warnings=result.warnings + [f"audit: {a}" for a in result.audit],
            policy_versions=result.policy_versions,
            input_hash=result.input_hash,
            latency_ms=result.latency_ms,
            source=self.config.source,
        )

    def _hold(
        self, decision: Decision, resolved: ResolvedAction, verdict: PolicyVerdict, now: datetime
    ) -> Approval:
        approval = Approval.caused_by(
            verdict,
            request_id=decision.event_id,
            status="pending",
            resource_id=decision.resource_id,
            reason="; ".join(verdict.reasons)[:4096],
            source=self.config.source,
            expires_at=now + timedelta(seconds=self.config.approval_ttl_seconds),
        )
        self.state.pending[decision.event_id] = Pending(decision, approval, resolved)
        return approval

    def _act(
        self, decision: Decision, resolved: ResolvedAction, cause: Event, now: datetime
    ) -> Action:
        # the action carries what was evaluated: runbook, content hash, typed variables
        action = Action.caused_by(
            cause,
            action_id=action_id_for(decision.event_id),
            resource_id=decision.resource_id,
            action_type=decision.decision_type,
            params=resolved.variables,
            decision_id=decision.event_id,
            runbook=resolved.runbook_id,
            runbook_hash=resolved.runbook_hash,
            source=self.config.source,
            event_time=now,
        )
        self.observe_action(action, resolved.implements)
        return action

    # --- approvals -------------------------------------------------------------------------------
    def pending(self) -> list[Approval]:
        """Pending approval requests, oldest first."""
        return [p.approval for p in self.state.pending.values()]

    def on_approval(self, approval: Approval, *, now: datetime | None = None) -> list[Event]:
        """Release (approved → Action) or drop (rejected) a pending item; others are ignored.

        Approving an item past its expiry emits its expiry instead: a late yes must not act on a
        stale decision.
        """
        now = now or utc_now()
        item = self.state.pending.get(approval.request_id)
        if item is None or approval.status in ("pending",):
            return []
        expires_at = item.approval.expires_at
        if expires_at is not None and expires_at <= now:
            return list(self._expire_one(approval.request_id))
        del self.state.pending[approval.request_id]
        if approval.status == "approved":
            return [self._act(item.decision, item.resolved, approval, now)]
        return []

    def expire(self, now: datetime | None = None) -> list[Approval]:
        """Emit (and forget) every pending item whose time is up."""
        now = now or utc_now()
        due = [
            rid
            for rid, p in self.state.pending.items()
            if p.approval.expires_at and p.approval.expires_at <= now
        ]
        return [e for rid in due for e in self._expire_one(rid)]

    def _expire_one(self, request_id: str) -> list[Approval]:
        item = self.state.pending.pop(request_id)
        return [
            Approval.caused_by(
                item.approval,
                request_id=request_id,
                status="expired",
                resource_id=item.approval.resource_id,
                reason=f"no decision within {self.config.approval_ttl_seconds:g} s",
                source=self.config.source,
            )
        ]

    # --- state -----------------------------------------------------------------------------------
    def snapshot(self) -> dict[str, Any]:
        """JSON-able state (pending items, counters); see `restore`."""
        return self.state.snapshot()

    def restore(self, state: Mapping[str, Any]) -> None:
        """Replace the state with a snapshot (items from before resolution are resolved now)."""
        self.state.restore(state, self.resolver.resolve)

    def snapshot_key(self, key: str, now: datetime | None = None) -> bytes | None:
        """One resource's state as bytes (None: nothing to keep)."""
        window = timedelta(seconds=self.config.migration_window_seconds)
        return self.state.snapshot_key(key, now or utc_now(), window)

    def restore_key(self, key: str, blob: bytes) -> None:
        """Resume one resource from `snapshot_key` bytes; DecodeError when unusable."""
        self.state.restore_key(key, blob, self.resolver.resolve)

    def forget_key(self, key: str) -> None:
        """Drop one resource's state (its partition moved to another worker)."""
        self.state.forget_key(key)


def _failure(stage: str, exc: BaseException) -> str:
    return f"{stage} failed, failing closed: {type(exc).__name__}: {str(exc)[:500]}"
