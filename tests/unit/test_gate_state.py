"""The gate's per-resource state: snapshot → restore per key, and its checkpoints through the
generic host's state store (memory store: no broker)."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from agents.gate import PolicyGate
from schemas import Approval, Insight
from schemas.envelope import utc_now
from schemas.errors import DecodeError
from streams.gate_state import GATE_AGENT, GateCheckpoints
from streams.host_metrics import HostMetrics
from streams.state import CheckpointBook, MemoryStateStore
from tests.unit.test_gate import decision, make_gate

TOPIC = "novacron.decisions"


def busy_gate() -> tuple[PolicyGate, str]:
    """A gate with a pending request, two migrations and a raised flag, all on `web`."""
    gate, now = make_gate(), utc_now()
    pending = decision(requires_approval=True)
    gate.evaluate(pending, now=now)
    for _ in range(2):
        gate.evaluate(decision("migrate_vm"), now=now)
    gate.observe_insight(Insight(resource_id="web", kind="anomaly", score=0.99, event_time=now))
    return gate, pending.event_id


def checkpoints(gate: PolicyGate, store: MemoryStateStore) -> GateCheckpoints:
    return GateCheckpoints(gate, store, CheckpointBook(1, 30.0), HostMetrics(None))


def test_one_resource_round_trips_with_its_expiry() -> None:
    gate, request = busy_gate()
    blob = gate.snapshot_key("web")
    assert blob is not None and gate.snapshot_key("other") is None
    clone = make_gate()
    clone.restore_key("web", blob)
    now = utc_now()
    assert clone.pending() == gate.pending()  # the same request, the same expires_at
    assert clone.migrations_last_window("web", now) == 2
    assert clone.in_incident("web", now)
    assert clone.snapshot_key("web") == blob
    clone.forget_key("web")
    assert clone.pending() == [] and clone.snapshot_key("web") is None
    assert clone.state.resource_of(request) is None


def test_lapsed_counters_are_not_kept() -> None:
    gate, _ = busy_gate()
    later = utc_now() + timedelta(hours=2)
    restored = make_gate()
    restored.restore_key("web", gate.snapshot_key("web", later) or b"")
    assert restored.migrations_last_window("web", utc_now()) == 0
    assert not restored.in_incident("web", utc_now())
    assert len(restored.pending()) == 1  # expiry is the gate's timer's to emit, not dropped here


def test_unusable_state_raises_decode_error() -> None:
    with pytest.raises(DecodeError):
        make_gate().restore_key("web", b"\x00 not json")
    with pytest.raises(DecodeError):
        make_gate().restore_key("web", b'{"pending": [{"decision": {}}]}')


def test_checkpoints_restore_on_a_new_worker_and_skip_redelivered_inputs() -> None:
    async def scenario() -> None:
        store = MemoryStateStore()
        gate, request = busy_gate()
        cp = checkpoints(gate, store)
        await cp.ensure([3])
        cp.touched("web", (TOPIC, 3, 41))
        await cp.save_due()
        assert [r.key for r in store.partitions[3].values()] == ["web"]
        assert next(iter(store.partitions[3].values())).agent == GATE_AGENT

        fresh = make_gate()  # the worker after a SIGKILL
        again = checkpoints(fresh, store)
        assert await again.ensure([3]) == ["web"]
        assert [a.request_id for a in fresh.pending()] == [request]
        assert fresh.in_incident("web", utc_now())
        assert again.replayed("web", (TOPIC, 3, 41))  # already in the restored state
        assert not again.replayed("web", (TOPIC, 3, 42))

        # an approval changes the resource without an input: saved all the same
        [action] = fresh.on_approval(Approval(request_id=request, status="approved"))
        again.changed("web")
        await again.save_due()
        third = make_gate()
        await checkpoints(third, store).ensure([3])
        assert third.pending() == [] and third.migrations_last_window("web", utc_now()) == 2
        assert action.decision_id == request

        again.keep_only([])  # the partition moved away: its resources are forgotten here
        assert fresh.snapshot_key("web") is None and again.loaded == set()

    asyncio.run(scenario())


def test_an_answer_that_arrives_before_its_partition_acts_once_when_restored() -> None:
    from types import SimpleNamespace

    from agents.gate_facts import ResourceFacts
    from streams.gate import GateHost

    async def scenario() -> None:
        store = MemoryStateStore()
        gate, request = busy_gate()
        cp = checkpoints(gate, store)
        cp.touched("web", (TOPIC, 2, 7))
        await cp.save_due()

        sent: list[object] = []

        async def emit(events: list[object]) -> int:
            sent.extend(events)
            return len(events)

        fresh = make_gate()  # restarted: approvals are read before the partition is assigned
        host = GateHost(SimpleNamespace(), fresh, ResourceFacts(), emit,  # type: ignore[arg-type]
                        checkpoints(fresh, store))
        yes = Approval(request_id=request, status="approved", by="alice")
        assert await host.approvals([yes]) == [] and list(host.unmatched) == [request]
        await host.assigned({2})
        [action] = sent
        assert getattr(action, "decision_id", None) == request and host.unmatched == {}
        assert await host.approvals([yes]) == []  # answered twice: it acted once
        await host.assigned({2})
        assert len(sent) == 1 and fresh.pending() == []
        restarted = make_gate()  # and the release itself was saved
        await checkpoints(restarted, store).ensure([2])
        assert restarted.pending() == []

    asyncio.run(scenario())
