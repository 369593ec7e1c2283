"""Ready-made history queries: deduplicated counts, samples, causal chains, DLQ and report SQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from string import Template
from typing import Any, Protocol

from schemas.errors import RejectedError
from sinks.ddl import AUDIT_TABLE, TABLES, quote
from sinks.rows import format_datetime

# SQL is built from whitelisted table names, quote()d identifiers and literal()-escaped values.
# ruff: noqa: S608
__all__ = [
    "SQL_DIR",
    "audit_rows",
    "audit_tail",
    "iter_audit_rows",
    "chain",
    "with_hops",
    "dlq_count",
    "dlq_reasons",
    "literal",
    "render_sql",
    "report_names",
    "run_report",
    "sample_rows",
    "table_counts",
]

class Reader(Protocol):
    """What these queries need: rows of a read statement (a Backend or a history reader)."""

    def query(self, sql: str) -> list[dict[str, Any]]:
        """Rows of one statement."""
        ...


SQL_DIR = Path(__file__).with_name("sql")
"""Audit-report building blocks: `$db`, `$start`, `$end`, `$standard` placeholders."""

_TABLE_NAMES = {spec.name for spec in TABLES.values()}


def literal(value: Any) -> str:
    """A ClickHouse SQL literal (strings escaped, datetimes as UTC DateTime64(3))."""
    if isinstance(value, datetime):
        return f"toDateTime64('{format_datetime(value)}', 3, 'UTC')"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    text = str(value).replace("\\", "\\\\").replace("'", "\\'")
    return f"'{text}'"


def _table(db: str, name: str) -> str:
    if name not in _TABLE_NAMES:
        raise RejectedError(f"unknown history table {name!r}; known: {sorted(_TABLE_NAMES)}")
    return f"{quote(db)}.{quote(name)}"


def table_counts(backend: Reader, db: str) -> dict[str, int]:
    """Distinct events per table (uniqExact(event_id): redelivered duplicates count once)."""
    parts = [
        f"SELECT '{name}' AS t, uniqExact(event_id) AS n FROM {_table(db, name)}"
        for name in sorted(_TABLE_NAMES)
    ]
    rows = backend.query(" UNION ALL ".join(parts))
    return {r["t"]: int(r["n"]) for r in rows}


def dlq_count(backend: Reader, db: str) -> int:
    """Distinct dead letters stored."""
    rows = backend.query(f"SELECT uniqExact(event_id) AS n FROM {_table(db, 'dead_letters')}")
    return int(rows[0]["n"])


def sample_rows(backend: Reader, db: str, table: str, n: int = 10) -> list[dict[str, Any]]:
    """The `n` most recent rows of a table (deduplicated with FINAL)."""
    return backend.query(
        f"SELECT * EXCEPT (payload) FROM {_table(db, table)} FINAL "
        f"ORDER BY event_time DESC, event_id LIMIT {int(n)}"
    )


def chain(backend: Reader, db: str, correlation_id: str) -> list[dict[str, Any]]:
    """Every event of one causal chain across all tables, oldest first, each once, with
    `hop_ms`: its `produced_at` minus its cause's (the latency of the hop that made it)."""
    cid = literal(correlation_id)
    parts = [
        f"SELECT '{spec.name}' AS table_name, '{etype}' AS event_type, event_id, event_time, "
        f"produced_at, source, causation_id, payload FROM {_table(db, spec.name)} "
        f"WHERE correlation_id = {cid}"
        for etype, spec in TABLES.items()
    ]
    union = " UNION ALL ".join(parts)
    rows = backend.query(
        "SELECT table_name, event_type, event_id, any(event_time) AS event_time, "
        "any(produced_at) AS produced_at, any(source) AS source, "
        "any(causation_id) AS causation_id, any(payload) AS payload "
        f"FROM ({union})"
        " GROUP BY table_name, event_type, event_id ORDER BY event_time, event_id"
    )
    return with_hops(rows)


def with_hops(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Add `hop_ms` to chain rows: produced_at minus the cause's produced_at (None: unknown)."""
    produced = {r["event_id"]: _instant(r.get("produced_at")) for r in rows}
    out = []
    for r in rows:
        mine, cause = produced.get(r["event_id"]), produced.get(r.get("causation_id") or "")
        hop = None if mine is None or cause is None else round((mine - cause) * 1000, 3)
        out.append({**r, "hop_ms": hop})
    return out


def _instant(value: Any) -> float | None:
    """Epoch seconds of a DateTime64 as a reader returns it (datetime or text), or None."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        moment = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
        return moment.timestamp()
    text = str(value).replace(" ", "T")
    parsed = datetime.fromisoformat(text)
    return (parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)).timestamp()


def dlq_reasons(backend: Reader, db: str, limit: int = 20) -> list[dict[str, Any]]:
    """Dead letters grouped by topic, kind and reason, most frequent first."""
    return backend.query(
        f"SELECT source_topic, error_kind, reason, uniqExact(event_id) AS records "
        f"FROM {_table(db, 'dead_letters')} GROUP BY source_topic, error_kind, reason "
        f"ORDER BY records DESC, source_topic, reason LIMIT {int(limit)}"
    )


def audit_tail(backend: Reader, db: str) -> dict[str, Any] | None:
    """The audit row with the highest seq, to resume the chain (`AuditChain.resume`)."""
    rows = backend.query(
        f"SELECT seq, hash FROM {quote(db)}.{AUDIT_TABLE} FINAL ORDER BY seq DESC LIMIT 1"
    )
    return rows[0] if rows else None


def audit_rows(
    backend: Reader, db: str, from_seq: int = 1, limit: int | None = None
) -> list[dict[str, Any]]:
    """Audit rows from `from_seq` on, in chain order (deduplicated), for `verify_chain`."""
    page = f" LIMIT {int(limit)}" if limit is not None else ""
    return backend.query(
        f"SELECT seq, time, actor, kind, subject_id, correlation_id, details, prev_hash, hash "
        f"FROM {quote(db)}.{AUDIT_TABLE} FINAL WHERE seq >= {int(from_seq)} ORDER BY seq{page}"
    )


def iter_audit_rows(backend: Reader, db: str, page: int = 10_000) -> Iterator[dict[str, Any]]:
    """Every audit row in chain order, fetched a page at a time (readers cap result sizes)."""
    from_seq = 1
    while True:
        rows = audit_rows(backend, db, from_seq, page)
        yield from rows
        if len(rows) < page:
            return
        from_seq = int(rows[-1]["seq"]) + 1


def report_names() -> list[str]:
    """Names of the report SQL files (without `.sql`)."""
    return sorted(p.stem for p in SQL_DIR.glob("*.sql"))


def render_sql(
    name: str,
    db: str,
    start: datetime | None = None,
    end: datetime | None = None,
    standard: str = "",
) -> str:
    """A report SQL file with its placeholders filled (time range defaults to everything)."""
    path = SQL_DIR / f"{name}.sql"
    if not path.is_file():
        raise RejectedError(f"unknown report {name!r}; known: {report_names()}")
    start = start or datetime(1970, 1, 1, tzinfo=UTC)
    end = end or datetime(2299, 12, 31, tzinfo=UTC)
    return Template(path.read_text()).substitute(
        db=quote(db), start=literal(start), end=literal(end), standard=literal(standard)
    )


def run_report(backend: Reader, name: str, db: str, **params: Any) -> list[dict[str, Any]]:
    """Render and run one report SQL file."""
    return backend.query(render_sql(name, db, **params))
