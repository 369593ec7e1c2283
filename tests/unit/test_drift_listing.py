"""`drift list` SQL: validated inputs, and its meaning checked on the real ClickHouse engine."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from agents.drift import open_findings, open_findings_sql
from schemas.errors import RejectedError
from sinks.config import ClickHouseConfig
from sinks.ddl import create_statements

COLUMNS = (
    "event_id, event_time, resource_id, resource_type, severity, drift_ratio, changed_fields, "
    "baseline_revision, correlation_id, status"
)
ROWS = (
    "('e1', now64(3) - 100, 'vm-1', 'novacron_vm', 'HIGH', 0.3, ['/a'], 'abc', 'c1', 'open'), "
    "('e2', now64(3) - 50, 'vm-1', 'novacron_vm', 'HIGH', 0, [], 'abc', 'c1', 'remediated'), "
    "('e3', now64(3) - 10, 'vm-2', 'novacron_vm', 'LOW', 0.06, ['/b'], NULL, 'c3', 'open'), "
    "('e4', now64(3) - 5, 'sg-1', 'aws_security_group', 'CRITICAL', 0.1, ['/ingress/0'], 'r', "
    "'c4', 'open'), "
    "('e5', now64(3) - 86400 * 40, 'old', 'novacron_vm', 'HIGH', 0.4, ['/c'], 'r', 'c5', 'open')"
)


@pytest.fixture(scope="module")
def chdb_query() -> Iterator[Any]:
    from chdb import session

    sess = session.Session()
    # The history sink's own DDL, so the query is checked against the real table.
    for stmt in create_statements(ClickHouseConfig(database="t")):
        if "CREATE DATABASE" in stmt or "`drift_findings` (" in stmt:
            sess.query(stmt)
    sess.query(f"INSERT INTO t.drift_findings ({COLUMNS}) VALUES {ROWS}")

    def query(sql: str) -> list[dict[str, Any]]:
        text = str(sess.query(sql, "JSONEachRow"))
        return [json.loads(line) for line in text.splitlines() if line.strip()]

    yield query
    sess.cleanup()


def test_latest_open_finding_per_resource_most_severe_first(chdb_query: Any) -> None:
    rows = open_findings(chdb_query, table="t.drift_findings")
    # vm-1's latest finding is remediated; "old" is outside the 30-day window.
    assert [r["resource_id"] for r in rows] == ["sg-1", "vm-2"]
    assert rows[0]["changed_fields"] == ["/ingress/0"]


def test_filters(chdb_query: Any) -> None:
    assert [
        r["event_id"]
        for r in open_findings(chdb_query, table="t.drift_findings", severities=["LOW"])
    ] == ["e3"]
    by_type = open_findings(
        chdb_query, table="t.drift_findings", resource_type="aws_security_group"
    )
    assert [r["event_id"] for r in by_type] == ["e4"]
    assert len(open_findings(chdb_query, table="t.drift_findings", since_days=60)) == 3


@pytest.mark.parametrize(
    "kwargs",
    [
        {"table": "drift; DROP TABLE x"},
        {"severities": ["HIGH' OR 1=1 --"]},
        {"resource_type": "x' OR '1'='1"},
        {"limit": 0},
    ],
)
def test_unsafe_arguments_are_rejected(kwargs: dict[str, Any]) -> None:
    with pytest.raises(RejectedError):
        open_findings_sql(**kwargs)
