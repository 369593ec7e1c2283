"""Typed configuration of the history layer: which ClickHouse backend and how the sink batches."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, model_validator

__all__ = ["ClickHouseConfig", "SinkConfig"]


class ClickHouseConfig(BaseModel):
    """Where the history lives: embedded chDB (default) or a ClickHouse server."""

    backend: Literal["chdb", "server"] = "chdb"
    """`chdb`: in-process engine, data under `path` (one process owns it); `server`: `url`."""
    path: Path = Path("var/chdb")
    """chDB data folder (created if missing); locked to a single process while open."""
    url: str | None = None
    """Server URL for `backend=server`, e.g. `http://user:pass@host:8123` (https for TLS)."""
    database: str = Field(default="novacron", pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    """Database holding every history table (an identifier: letters, digits, underscore)."""
    ttl_days: int = Field(default=365, ge=1)
    """Rows older than this many days (by event_time) are dropped by the table TTL."""

    @model_validator(mode="after")
    def _server_needs_url(self) -> ClickHouseConfig:
        if self.backend == "server" and not self.url:
            raise ValueError("clickhouse.backend=server needs clickhouse.url (http://host:8123)")
        return self


class SinkConfig(BaseModel):
    """How the history sink batches inserts and retries while ClickHouse is down."""

    batch_size: int = Field(default=10_000, ge=1)
    """Flush when this many records are buffered (chDB pays ~14 ms per INSERT: keep it large)."""
    batch_seconds: float = Field(default=1.0, gt=0)
    """Flush at the latest this long after the first record of a batch was buffered."""
    fetch_min_bytes: int = Field(default=512 * 1024, ge=1)
    """The broker answers the sink's fetch once this many bytes are ready (or the wait below has
    passed). History lands per `batch_seconds` anyway; without it, at a few thousand events/s
    every arriving record answers a fetch across all partitions of every topic, which cost the
    ingest worker ~3x the CPU of the work itself (bench/README.md, e2e_latency)."""
    fetch_max_wait_ms: int = Field(default=250, ge=0, le=5_000)
    """Longest the broker holds the sink's fetch waiting for `fetch_min_bytes` (keep it well
    under `batch_seconds`: it adds to how soon a record is visible to /sql)."""
    fast_decode: bool = True
    """Decode canonical MetricSample JSON records straight into history columns, without
    pydantic models (`sinks.fastpath`: ~2x less CPU per record). Every other record, and every
    refusal with its dead letter, goes through the pydantic path as before; off: all records do."""
    retry_initial_seconds: float = Field(default=0.5, gt=0)
    """First backoff delay after a failed insert; doubles on each further failure."""
    retry_max_seconds: float = Field(default=30.0, gt=0)
    """Upper bound of the backoff delay."""


class SqlLimits(BaseModel):
    """Limits the engine enforces on every read query (the /sql endpoint and the CLI readers)."""

    max_execution_seconds: float = Field(default=30.0, gt=0, le=3600)
    """A query running longer is cancelled (ClickHouse `max_execution_time`)."""
    max_memory_bytes: int = Field(default=512 * 1024 * 1024, ge=16 * 1024 * 1024)
    """Memory one query may use (`max_memory_usage`); the ingest pod's limit is 1 GiB."""
    max_result_rows: int = Field(default=100_000, ge=1)
    """Rows a result may have; a larger result is an error, not a silent cut."""
    max_result_bytes: int = Field(default=64 * 1024 * 1024, ge=1024)
    """Uncompressed bytes a result may have."""
    max_threads: int = Field(default=1, ge=1, le=64)
    """Threads per query: 1 leaves the other cores to decoding and inserts."""
    max_query_bytes: int = Field(default=65_536, ge=256)
    """Longest accepted statement."""
    max_concurrent: int = Field(default=2, ge=1, le=16)
    """Queries the /sql endpoint runs at once (each on its own read session); more wait."""

    def engine_settings(self) -> dict[str, int | float | str]:
        """The session settings, `readonly = 1` last: after it nothing can be changed."""
        return {
            "max_execution_time": self.max_execution_seconds,
            "timeout_overflow_mode": "throw",
            "max_memory_usage": self.max_memory_bytes,
            "max_result_rows": self.max_result_rows,
            "max_result_bytes": self.max_result_bytes,
            "result_overflow_mode": "throw",
            "max_threads": self.max_threads,
            "output_format_json_quote_64bit_integers": 0,
            "readonly": 1,
        }


class AuditConfig(BaseModel):
    """Anchoring of the hash-chained audit log: signed chain heads published outside ClickHouse."""

    signing_key_file: Path = Path("var/secrets/audit-signing.key")
    """Secret file with the hex ed25519 signing key (`novacron audit keygen`); when it does not
    exist the ingest worker writes unsigned chains and warns (truncation is then undetectable)."""
    trusted_keys: list[str] = Field(default_factory=list)
    """Hex public keys whose head signatures `novacron audit verify` accepts; the public key of a
    readable `signing_key_file` is accepted too. Auditors should pin the key here."""
    head_file: Path | None = Path("var/audit/head.json")
    """Where the ingest worker also writes the latest signed head (None: Kafka topic only)."""
