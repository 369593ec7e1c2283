"""The policy gate as an agent of the one contract: decisions, anomalies and answers in.

`PolicyGate` is the pure logic; this class fits it to `agents.contract.Agent` so the generic
host runs it like every other agent: decisions (and anomaly insights, for the incident flag) come
from the govern role's consumer group, keyed by resource; answers come from the `approvals`
topic, which every govern instance reads in full (a `broadcast` input, keyed by request, so the
instance holding a pending request may not own the answer's partition). An answer for a request
not held here is kept, and acts on the tick after the request's partition is restored.
"""

from __future__ import annotations

from collections import Counter, OrderedDict
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import ClassVar

from agents.contract import AgentBase, Examples, refuse
from agents.gate import GateResult, PolicyGate, Ready
from agents.gate_facts import ResourceFacts
from schemas import Action, Approval, Decision, Event, Insight, PolicyVerdict

__all__ = ["GateAgent"]

UNMATCHED_MAX = 10_000  # answers kept for requests whose partition has not been restored yet
_ANSWERS = ("approved", "rejected")
_EMPTY = b"{}"


class GateAgent(AgentBase):
    """Every decision gets a verdict; pending approvals, incident flags and migration counters
    are per-resource state."""

    name: ClassVar[str] = "gate"
    inputs: ClassVar[tuple[type[Event], ...]] = (Decision, Insight, Approval)

    def __init__(self, gate: PolicyGate, facts: ResourceFacts,
                 seed: Callable[[], Sequence[Event]] | None = None) -> None:
        self.gate, self.facts = gate, facts
        self._seed = seed
        self.ready = seed is None
        """True once the shipped policies are in the registry (the first tick seeds them)."""
        self.unmatched: OrderedDict[str, Approval] = OrderedDict()
        """Answers to requests not (yet) held here: their partition may arrive later."""
        self.answered: Counter[str] = Counter()
        """Answers applied, by status (the host-side companion exports them as a metric)."""
        self._held: set[str] = set()  # resources this instance keeps a (maybe empty) record of
        self._ready: Ready = {}  # this batch's engine results, computed ahead (`prepare`)

    def prepare(self, events: Sequence[Event]) -> None:
        """Evaluate the batch's decisions in one engine call; `handle` uses a result only while
        the decision's input is still the one it was computed for."""
        self._ready = {}  # a result from an earlier batch may predate a policy change
        decisions = [e for e in events if isinstance(e, Decision)]
        if len(decisions) > 1:
            self._ready = self.gate.precompute(
                [(d, self.facts.context_for(d)) for d in decisions])

    # --- inputs ------------------------------------------------------------------------------
    def handle(self, event: Event) -> list[Event]:
        if isinstance(event, Decision):
            return self._decide(event)
        if isinstance(event, Insight):
            self.gate.observe_insight(event)
            return []
        if isinstance(event, Approval):
            return self._answer(event) if event.status in _ANSWERS else []
        refuse(self, event)

    def _decide(self, decision: Decision) -> list[Event]:
        self._held.add(decision.resource_id)
        try:
            result = self.gate.evaluate(decision, self.facts.context_for(decision),
                                        ready=self._ready)
        except Exception as exc:  # one bad decision never goes without a verdict: fail closed
            reason = f"gate failed, failing closed: {type(exc).__name__}: {str(exc)[:500]}"
            result = GateResult(self.gate.refusal(decision, reason))
        return result.events

    def _answer(self, approval: Approval) -> list[Event]:
        if self.gate.state.resource_of(approval.request_id) is None:
            self.unmatched[approval.request_id] = approval
            self.unmatched.move_to_end(approval.request_id)
            while len(self.unmatched) > UNMATCHED_MAX:
                self.unmatched.popitem(last=False)
            return []
        self.unmatched.pop(approval.request_id, None)
        self.answered[approval.status] += 1
        return self.gate.on_approval(approval)

    def tick(self, now: datetime) -> list[Event]:
        """Seed the shipped policies once, expire what is due, apply answers now matched."""
        out: list[Event] = []
        if not self.ready and self._seed is not None:
            out += self._seed()
            self.ready = True
        expired = self.gate.expire(now)
        self.answered["expired"] += len(expired)
        out += expired
        for rid, approval in list(self.unmatched.items()):
            if self.gate.state.resource_of(rid) is not None:
                out += self._answer(approval)
        return out

    # --- per-resource state ------------------------------------------------------------------
    def state_key(self, event: Event) -> str | None:
        """The resource an input or an output of the gate changes (None: none)."""
        if isinstance(event, Approval):
            held = self.gate.state.resource_of(event.request_id)
            # an expiry the gate emitted names the resource it dropped the request of
            return held or (event.resource_id or None if event.status == "expired" else None)
        if isinstance(event, Insight):
            return event.resource_id if event.kind == "anomaly" else None
        if isinstance(event, (Decision, Action, PolicyVerdict)):
            return event.resource_id or None
        return None

    def snapshot(self, key: str) -> bytes | None:
        # an empty record is kept, not deleted: its positions tell a redelivered decision apart
        blob = self.gate.snapshot_key(key)
        return blob if blob is not None else (_EMPTY if key in self._held else None)

    def restore(self, key: str, blob: bytes) -> None:
        self.gate.restore_key(key, blob)
        self._held.add(key)

    def forget(self, key: str) -> None:
        self.gate.forget_key(key)
        self._held.discard(key)

    @classmethod
    def examples(cls) -> Examples:
        """An incident, migrations up to the limit, a held scale-up that is approved."""
        from policies.registry import PolicyRegistry
        from policies.source import SHIPPED_POLICY_DIR, load_directory

        t0 = datetime(2030, 1, 1, tzinfo=UTC) - timedelta(minutes=30)
        registry = PolicyRegistry()
        policies = registry.seed(load_directory(SHIPPED_POLICY_DIR))

        def decision(i: int, rid: str, kind: str, **fields: object) -> Decision:
            return Decision(resource_id=rid, decision_type=kind, confidence=0.9,  # type: ignore[arg-type]
                            event_id=f"d-{i}", event_time=t0 + timedelta(minutes=i), **fields)

        held = decision(3, "api", "scale_up", params={"delta": 1}, requires_approval=True)
        return Examples(
            inputs=[
                Insight(resource_id="vm-hot", kind="anomaly", metric="cpu_usage", score=0.97,
                        event_id="i-0", event_time=t0),
                decision(1, "vm-dev", "migrate_vm", params={"target_region": "eu-west-1"}),
                decision(2, "vm-dev", "migrate_vm", params={"target_region": "eu-west-1"}),
                held,
                decision(4, "vm-hot", "scale_down"),
                decision(5, "vm-dev", "migrate_vm", params={"target_region": "eu-west-1"}),
                decision(6, "vm-dev", "migrate_vm", params={"target_region": "eu-west-1"}),
                Approval(request_id=held.event_id, status="approved", by="alice",
                         event_id="a-7", event_time=t0 + timedelta(minutes=7)),
                decision(8, "vm-hot", "scale_down"),
            ],
            shared=policies,
            measured=("latency_ms",),
        )

