"""History DDL generated from the event models: one ReplacingMergeTree table per event type."""

from __future__ import annotations

import types
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, Protocol, Union, get_args, get_origin

from schemas import EVENT_TYPES
from schemas.edge import strip_annotated
from schemas.envelope import Event
from sinks.config import ClickHouseConfig

# DDL is built from the model-derived specs and a pattern-validated database name.
# ruff: noqa: S608
__all__ = [
    "AUDIT_TABLE",
    "ROLLUP_TABLE",
    "ROLLUP_VIEW",
    "TABLES",
    "Column",
    "SchemaTarget",
    "TableSpec",
    "apply_ddl",
    "column_for",
    "create_statements",
    "quote",
    "table_for",
]

ColumnKind = Literal["plain", "datetime", "json"]
DATETIME = "DateTime64(3, 'UTC')"

TABLE_NAMES: dict[str, str] = {
    "MetricSample": "metric_samples",
    "ConfigChange": "config_changes",
    "DesiredState": "desired_states",
    "PolicyVersion": "policy_versions",
    "Insight": "insights",
    "Decision": "decisions",
    "PolicyVerdict": "policy_verdicts",
    "Approval": "approvals",
    "Action": "actions",
    "Outcome": "outcomes",
    "DriftFinding": "drift_findings",
    "ComplianceResult": "compliance_results",
    "DeadLetter": "dead_letters",
    "GitSync": "git_syncs",
    "ModelPromotion": "model_promotions",
}
"""Event type → table name (an event type missing here gets its snake_case name + `s`)."""

# Sorting keys follow the common queries (one resource over time, one action's outcomes, one
# control across resources) and end in event_id: identical re-sent rows share the whole key,
# so ReplacingMergeTree collapses them.
ORDER_BY: dict[str, tuple[str, ...]] = {
    "PolicyVersion": ("policy_id", "version"),
    "Insight": ("resource_id", "kind", "event_time"),
    "PolicyVerdict": ("decision_id", "event_time"),
    "Approval": ("request_id", "event_time"),
    "Action": ("action_id", "event_time"),
    "Outcome": ("action_id", "event_time"),
    "ComplianceResult": ("control_id", "resource_id", "event_time"),
    "DeadLetter": ("source_topic", "event_time"),
    "GitSync": ("repo", "event_time"),
    "ModelPromotion": ("model", "event_time"),
}
DEFAULT_ORDER_BY = ("resource_id", "event_time")

PAYLOAD_ONLY: frozenset[str] = frozenset({"raw"})
"""Fields kept only inside `payload` (DeadLetter.raw: up to 1 MB of bytes, base64 there)."""

AUDIT_TABLE = "audit_log"
ROLLUP_TABLE = "metric_rollup_1m"
ROLLUP_VIEW = "metric_rollup_1m_v"


@dataclass(frozen=True)
class Column:
    """One typed column: its ClickHouse type and how a Python value is converted for it."""

    name: str
    ch_type: str
    kind: ColumnKind = "plain"


@dataclass(frozen=True)
class TableSpec:
    """Declarative description of one history table, derived from an event model."""

    name: str
    model: type[Event]
    columns: tuple[Column, ...]
    order_by: tuple[str, ...]

    @property
    def field_columns(self) -> tuple[Column, ...]:
        """Columns filled from model fields (everything except payload and ingested_at)."""
        return tuple(c for c in self.columns if c.name in self.model.model_fields)

    def columns_of_kind(self, kind: ColumnKind) -> tuple[str, ...]:
        """Names of the field columns converted the same way (rows.py precomputes these)."""
        return tuple(c.name for c in self.field_columns if c.kind == kind)


def quote(name: str) -> str:
    """Back-quote an identifier (`offset` and `partition` are keywords)."""
    return "`" + name.replace("`", "``") + "`"


def column_for(name: str, annotation: Any) -> Column | None:
    """Map a pydantic field annotation to a column; None keeps the field in payload only."""
    if name in PAYLOAD_ONLY:
        return None
    origin, args = get_origin(annotation), get_args(annotation)
    if origin in (Union, types.UnionType) and type(None) in args:
        inner = [a for a in args if a is not type(None)]
        col = column_for(name, inner[0]) if len(inner) == 1 else None
        if col is None or col.kind == "json" or col.ch_type.startswith(("Map(", "Array(")):
            return col or Column(name, "String", "json")
        if col.ch_type == "LowCardinality(String)":
            return Column(name, "LowCardinality(Nullable(String))")
        return Column(name, f"Nullable({col.ch_type})", col.kind)
    return _scalar_column(name, annotation, origin, args)


def _scalar_column(name: str, annotation: Any, origin: Any, args: tuple[Any, ...]) -> Column:
    simple = {bool: "Bool", int: "Int64", float: "Float64", str: "String"}
    if annotation in simple:  # bool first: it is an int subclass, but dict lookup is exact
        return Column(name, simple[annotation])
    if annotation is datetime:
        return Column(name, DATETIME, "datetime")
    if origin is Literal:
        return Column(name, "LowCardinality(String)")
    if origin is dict and args and args[0] is str and args[1] in (str, float, int):
        return Column(name, f"Map(String, {simple[args[1]]})")
    if origin is list and args == (str,):
        return Column(name, "Array(String)")
    return Column(name, "String", "json")  # JSON objects, lists of objects, anything new


def table_spec(model: type[Event]) -> TableSpec:
    """Build the table spec of an event model from its fields."""
    cols = [column_for(n, strip_annotated(f.annotation)) for n, f in model.model_fields.items()]
    columns = tuple(c for c in cols if c is not None) + (
        Column("payload", "String CODEC(ZSTD(3))"),
        Column("ingested_at", f"{DATETIME} DEFAULT now64(3)"),
    )
    order = ORDER_BY.get(model.event_type, DEFAULT_ORDER_BY) + ("event_id",)
    name = TABLE_NAMES.get(model.event_type) or _snake(model.event_type) + "s"
    return TableSpec(name=name, model=model, columns=columns, order_by=order)


def _snake(name: str) -> str:
    return "".join("_" + c.lower() if c.isupper() else c for c in name).lstrip("_")


TABLES: dict[str, TableSpec] = {t: table_spec(m) for t, m in EVENT_TYPES.items()}
"""Event type → its table spec; rebuilt from the models at import, so it follows the schemas."""


def table_for(event_type: str) -> str:
    """Table name of an event type (`PolicyVerdict` → `policy_verdicts`)."""
    try:
        return TABLES[event_type].name
    except KeyError:
        raise KeyError(f"no history table for event type {event_type!r}") from None


def create_table_sql(spec: TableSpec, cfg: ClickHouseConfig) -> str:
    """CREATE TABLE IF NOT EXISTS for one event table."""
    cols = ",\n    ".join(f"{quote(c.name)} {c.ch_type}" for c in spec.columns)
    order = ", ".join(quote(c) for c in spec.order_by)
    return (
        f"CREATE TABLE IF NOT EXISTS {quote(cfg.database)}.{quote(spec.name)} (\n    {cols}\n)\n"
        "ENGINE = ReplacingMergeTree\nPARTITION BY toYYYYMM(event_time)\n"
        f"ORDER BY ({order})\nTTL toDateTime(event_time) + INTERVAL {cfg.ttl_days} DAY"
    )


def _extras_sql(cfg: ClickHouseConfig) -> list[str]:
    db = quote(cfg.database)
    return [
        f"""CREATE TABLE IF NOT EXISTS {db}.{AUDIT_TABLE} (
    seq UInt64, time {DATETIME}, actor String, kind LowCardinality(String), subject_id String,
    correlation_id String, details String, prev_hash String, hash String
) ENGINE = ReplacingMergeTree PARTITION BY toYYYYMM(time) ORDER BY seq""",
        f"""CREATE TABLE IF NOT EXISTS {db}.{ROLLUP_TABLE} (
    resource_id String, cluster LowCardinality(String), minute DateTime('UTC'),
    cpu AggregateFunction(avg, Nullable(Float64)),
    memory AggregateFunction(avg, Nullable(Float64)),
    latency AggregateFunction(avg, Nullable(Float64)),
    samples AggregateFunction(uniqExact, String)
) ENGINE = AggregatingMergeTree PARTITION BY toYYYYMM(minute)
ORDER BY (resource_id, cluster, minute) TTL minute + INTERVAL {cfg.ttl_days} DAY""",
        f"""CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.{ROLLUP_TABLE}_mv TO {db}.{ROLLUP_TABLE} AS
SELECT resource_id, cluster, toStartOfMinute(event_time) AS minute,
    avgState(cpu_usage) AS cpu, avgState(memory_usage) AS memory,
    avgState(network_latency_ms) AS latency, uniqExactState(event_id) AS samples
FROM {db}.metric_samples GROUP BY resource_id, cluster, minute""",
        f"""CREATE VIEW IF NOT EXISTS {db}.{ROLLUP_VIEW} AS
SELECT resource_id, cluster, minute, avgMerge(cpu) AS avg_cpu, avgMerge(memory) AS avg_memory,
    avgMerge(latency) AS avg_latency_ms, uniqExactMerge(samples) AS samples
FROM {db}.{ROLLUP_TABLE} GROUP BY resource_id, cluster, minute""",
        f"""CREATE VIEW IF NOT EXISTS {db}.workflow_steps AS
SELECT * FROM {db}.outcomes WHERE scope = 'step'""",
    ]


def create_statements(cfg: ClickHouseConfig) -> list[str]:
    """Every statement of the schema, in order (database, event tables, audit, roll-ups)."""
    tables = [create_table_sql(spec, cfg) for spec in TABLES.values()]
    return [f"CREATE DATABASE IF NOT EXISTS {quote(cfg.database)}", *tables, *_extras_sql(cfg)]


class SchemaTarget(Protocol):
    """The two calls of a `sinks.backend.Backend` that creating the schema needs.

    A protocol, so the backends (which take column blocks built from these table specs) and
    the specs do not import each other.
    """

    def execute(self, sql: str) -> None:
        """Run a statement that returns nothing."""

    def query(self, sql: str) -> list[dict[str, Any]]:
        """Run a SELECT and return its rows as dicts."""


def apply_ddl(backend: SchemaTarget, cfg: ClickHouseConfig) -> list[str]:
    """Create what is missing and add columns new model fields need; returns columns added.

    Idempotent: safe on every start. An existing table's TTL or sorting key is not changed.
    """
    for sql in create_statements(cfg):
        backend.execute(sql)
    return _add_missing_columns(backend, cfg)


def _add_missing_columns(backend: SchemaTarget, cfg: ClickHouseConfig) -> list[str]:
    db = cfg.database.replace("'", "")
    rows = backend.query(f"SELECT table, name FROM system.columns WHERE database = '{db}'")
    have = {(r["table"], r["name"]) for r in rows}
    added = []
    for spec in TABLES.values():
        for col in spec.field_columns:
            if (spec.name, col.name) not in have:
                backend.execute(
                    f"ALTER TABLE {quote(cfg.database)}.{quote(spec.name)} "
                    f"ADD COLUMN IF NOT EXISTS {quote(col.name)} {col.ch_type}"
                )
                added.append(f"{spec.name}.{col.name}")
    return added
