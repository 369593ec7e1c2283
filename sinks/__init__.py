"""History: ClickHouse DDL, backends (chDB, clickhouse-connect), batching writer and queries."""

from __future__ import annotations

from sinks.audit import AuditChain, verify_chain
from sinks.backend import (
    Backend,
    ChdbBackend,
    FlakyBackend,
    MemoryBackend,
    ServerBackend,
    open_backend,
)
from sinks.config import ClickHouseConfig, SinkConfig
from sinks.ddl import TABLES, apply_ddl, table_for
from sinks.readonly import GuardedReader, history_scope
from sinks.rows import to_row
from sinks.writer import BatchingSink, SinkStats, SinkStopped

__all__ = [
    "TABLES",
    "AuditChain",
    "Backend",
    "BatchingSink",
    "ChdbBackend",
    "ClickHouseConfig",
    "FlakyBackend",
    "GuardedReader",
    "MemoryBackend",
    "ServerBackend",
    "SinkConfig",
    "SinkStats",
    "SinkStopped",
    "apply_ddl",
    "history_scope",
    "open_backend",
    "table_for",
    "to_row",
    "verify_chain",
]
