"""A read-only Backend that queries the sink process's `/sql` endpoint (chDB has one owner)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import httpx
import orjson

from schemas.errors import BackendUnavailable, RejectedError

__all__ = ["HttpSqlBackend"]


class HttpSqlBackend:
    """Queries through the ingest worker's web port; writes are refused (it is read-only)."""

    def __init__(
        self,
        url: str = "http://127.0.0.1:6066",
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        self.client = httpx.Client(timeout=timeout, transport=transport)

    def execute(self, sql: str) -> None:
        raise RejectedError("the SQL endpoint is read-only; DDL runs in the ingest worker")

    def insert_rows(self, table: str, rows: Sequence[Mapping[str, Any]]) -> None:
        raise RejectedError("the SQL endpoint is read-only; events reach ClickHouse through Kafka")

    def query_raw(self, sql: str, fmt: str = "JSONEachRow") -> bytes:
        try:
            resp = self.client.post(f"{self.url}/sql", params={"format": fmt}, content=sql.encode())
        except httpx.HTTPError as exc:
            raise BackendUnavailable(
                f"cannot reach the sink at {self.url} ({exc}); is `novacron worker --role ingest` "
                "running? (with chDB only that process can open the data folder)"
            ) from exc
        if resp.status_code != 200:
            raise RejectedError(f"SQL endpoint answered {resp.status_code}: {_error_text(resp)}")
        return resp.content

    def query(self, sql: str) -> list[dict[str, Any]]:
        raw = self.query_raw(sql, "JSONEachRow")
        return [orjson.loads(line) for line in raw.splitlines() if line.strip()]

    def close(self) -> None:
        self.client.close()


def _error_text(resp: httpx.Response) -> str:
    try:
        return str(resp.json().get("error", resp.text))
    except ValueError:
        return resp.text
