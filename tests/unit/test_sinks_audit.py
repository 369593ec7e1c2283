"""The audit log's hash chain detects edited, removed, reordered and forged rows."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from sinks.audit import GENESIS, AuditChain, audit_entry_for, row_hash, verify_chain
from tests.unit.test_sinks_examples import EXAMPLES

T = datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)


def build(n: int = 5) -> list[dict]:
    chain = AuditChain()
    return [
        chain.append(actor=f"user{i}", kind="Approval", subject_id=f"req-{i}",
                     correlation_id="c", details={"i": i}, time=T).as_dict()
        for i in range(n)
    ]


def test_chain_links_rows():
    rows = build()
    assert rows[0]["prev_hash"] == GENESIS and rows[0]["seq"] == 1
    assert all(b["prev_hash"] == a["hash"] for a, b in zip(rows, rows[1:], strict=False))
    assert verify_chain(rows) == []
    assert rows[0]["time"] == "2026-01-02 03:04:05.678"


def test_same_input_gives_same_hashes():
    assert build() == build()


@pytest.mark.parametrize("field", ["actor", "details", "time", "kind", "subject_id"])
def test_edited_row_is_detected(field):
    rows = build()
    rows[2] = {**rows[2], field: rows[2][field] + "x"}
    problems = verify_chain(rows)
    assert problems == ["seq 3: hash does not match the row's content (row altered)"]


def test_edit_with_recomputed_hash_breaks_the_next_link():
    rows = build()
    forged = {**rows[2], "actor": "mallory"}
    forged["hash"] = row_hash(forged)
    rows[2] = forged
    assert verify_chain(rows) == ["seq 4: prev_hash does not match the previous row's hash"]


def test_removed_and_reordered_rows_are_detected():
    rows = build()
    problems = verify_chain(rows[:2] + rows[3:])
    assert any("expected seq 3" in p for p in problems)
    assert any("prev_hash" in p for p in problems)
    assert verify_chain([rows[1], rows[0]] + rows[2:])


def test_resume_continues_the_chain():
    rows = build(3)
    chain = AuditChain.resume(rows[-1])
    more = chain.append(actor="a", kind="Action", subject_id="x", time=T).as_dict()
    assert more["seq"] == 4 and verify_chain(rows + [more]) == []
    assert AuditChain.resume(None).last_hash == GENESIS


def test_audit_entries_for_events():
    entry = audit_entry_for(EXAMPLES["Decision"])
    assert entry is not None
    assert entry["kind"] == "Decision" and entry["subject_id"] == "svc-a"
    assert entry["details"]["decision_type"] == "scale_up"
    pv = audit_entry_for(EXAMPLES["PolicyVersion"])
    assert pv is not None and "rego" not in pv["details"]  # large source stays out of the log
    assert audit_entry_for(EXAMPLES["MetricSample"]) is None
