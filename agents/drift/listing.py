"""`drift list`: open findings from the history (ClickHouse), through an injected query callable."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

from schemas.errors import RejectedError
from schemas.findings import SEVERITIES

__all__ = ["Query", "open_findings", "open_findings_sql"]

Query = Callable[[str], list[dict[str, Any]]]
"""Runs one SQL statement, returns rows as dicts (chDB, clickhouse-connect or the SQL endpoint)."""

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_.]*$")
_TYPE = re.compile(r"^[A-Za-z0-9_.*\-]+$")


def open_findings_sql(
    *,
    table: str = "novacron.drift_findings",
    severities: Sequence[str] = (),
    resource_type: str | None = None,
    since_days: int = 30,
    limit: int = 100,
) -> str:
    """SQL for the open findings: the latest finding per resource whose status is still open.

    Arguments are validated (not escaped), so no input can change the statement's shape.
    """
    if not _IDENT.match(table):
        raise RejectedError(f"invalid table name {table!r}")
    bad = [s for s in severities if s not in SEVERITIES]
    if bad:
        raise RejectedError(f"unknown severities {bad}; use {', '.join(SEVERITIES)}")
    if resource_type is not None and not _TYPE.match(resource_type):
        raise RejectedError(f"invalid resource type {resource_type!r}")
    if since_days < 1 or limit < 1:
        raise RejectedError("since_days and limit must be positive")
    where = ["status = 'open'"]
    if severities:
        where.append("severity IN (" + ", ".join(f"'{s}'" for s in severities) + ")")
    if resource_type is not None:
        where.append(f"resource_type = '{resource_type}'")
    order = (
        "multiIf(" + ", ".join(f"severity = '{s}', {i}" for i, s in enumerate(SEVERITIES)) + ", 9)"
    )
    # Every interpolated value is validated above, so the statement's shape is fixed.
    columns = (
        "event_id, event_time, resource_id, resource_type, severity, drift_ratio, "
        "changed_fields, baseline_revision, correlation_id"
    )
    latest = (
        f"SELECT * FROM {table} WHERE event_time >= now() - INTERVAL {int(since_days)} DAY"  # noqa: S608
        " ORDER BY event_time DESC LIMIT 1 BY resource_id"
    )
    tail = f"ORDER BY {order}, event_time DESC LIMIT {int(limit)}"
    return f"SELECT {columns} FROM ({latest}) WHERE {' AND '.join(where)} {tail}"  # noqa: S608


def open_findings(query: Query, **filters: Any) -> list[dict[str, Any]]:
    """Run the open-findings query (filters as for `open_findings_sql`)."""
    return query(open_findings_sql(**filters))
