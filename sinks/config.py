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
    retry_initial_seconds: float = Field(default=0.5, gt=0)
    """First backoff delay after a failed insert; doubles on each further failure."""
    retry_max_seconds: float = Field(default=30.0, gt=0)
    """Upper bound of the backoff delay."""
