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
from sinks.readonly import check_readonly, run_readonly
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
    "MemoryBackend",
    "ServerBackend",
    "SinkConfig",
    "SinkStats",
    "SinkStopped",
    "apply_ddl",
    "check_readonly",
    "open_backend",
    "run_readonly",
    "table_for",
    "to_row",
    "verify_chain",
]
