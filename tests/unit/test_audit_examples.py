"""The audit chain with fixed examples: the row hash against an independent computation, the
canonical form (sorted keys), what an audit row leaves out, and who the actor is."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any

from schemas import Decision, DesiredState, DriftFinding, GitSync, Outcome, PolicyVersion
from sinks.audit import GENESIS, AuditChain, audit_entry_for, row_hash, verify_chain

T = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def _expected(fields: dict[str, Any]) -> str:
    body = json.dumps({k: v for k, v in fields.items() if k != "hash"}, sort_keys=True,
                      separators=(",", ":"))
    return hashlib.sha256(str(fields["prev_hash"]).encode() + body.encode()).hexdigest()


def test_the_row_hash_is_sha256_of_prev_hash_and_the_sorted_fields() -> None:
    fields = {"seq": 1, "prev_hash": "p" * 64, "b": 2, "a": "x", "hash": "ignored"}
    assert row_hash(fields) == _expected(fields)
    reordered = dict(reversed(list(fields.items())))
    assert row_hash(reordered) == row_hash(fields)
    assert row_hash({**fields, "prev_hash": "q" * 64}) != row_hash(fields)


def test_a_row_carries_sorted_details_and_defaults() -> None:
    chain = AuditChain()
    row = chain.append(actor="ana", kind="Decision", subject_id="svc", details={"b": 1, "a": 2},
                       time=T)
    assert row.details == '{"a":2,"b":1}' and row.correlation_id == ""
    assert (row.seq, row.prev_hash) == (1, GENESIS)
    assert row.hash == _expected(row.as_dict())
    empty = chain.append(actor="ana", kind="Decision", subject_id="svc", time=T)
    assert empty.details == "{}" and empty.prev_hash == row.hash and empty.seq == 2
    assert verify_chain([row.as_dict(), empty.as_dict()]) == []


def test_an_audit_entry_leaves_out_bulky_fields_and_is_json() -> None:
    examples = [
        (PolicyVersion(policy_id="p", rego="package x", author="ana"), "rego"),
        (DesiredState(resource_id="r", resource_type="t", config={"a": 1}, author="ana"),
         "config"),
        (DriftFinding(resource_id="r", severity="LOW", drift_ratio=0.1,
                      changes=[{"path": "/a"}]), "changes"),
        (Outcome(action_id="a", status="succeeded", output={"x": 1}), "output"),
        (GitSync(repo="r", commit="c", status="applied", manifest={"f": "h"}, author="ana"),
         "manifest"),
    ]
    for event, left_out in examples:
        entry = audit_entry_for(event)
        assert entry is not None and left_out not in entry["details"], left_out
        assert entry["kind"] == event.event_type
        assert isinstance(entry["details"]["event_time"], str)  # JSON mode
        json.dumps(entry["details"])


def test_the_actor_falls_back_to_the_source() -> None:
    named = audit_entry_for(PolicyVersion(policy_id="p", author="ana", source="novacron.cli"))
    unnamed = audit_entry_for(PolicyVersion(policy_id="p", author="", source="novacron.cli"))
    assert named is not None and unnamed is not None
    assert (named["actor"], unnamed["actor"]) == ("ana", "novacron.cli")
    assert named["subject_id"] == "p"
    decision = Decision(resource_id="svc", decision_type="scale_up", source="novacron.learn")
    entry = audit_entry_for(decision)
    assert entry is not None and (entry["actor"], entry["subject_id"]) == ("novacron.learn", "svc")
    assert entry["correlation_id"] == decision.correlation_id
    assert entry["time"] == decision.event_time
