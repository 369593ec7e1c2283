"""A read-only Backend that queries the ingest worker's `/sql` endpoint with a bearer token."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import httpx
import orjson

from schemas.errors import BackendUnavailable, RejectedError

__all__ = ["HttpSqlBackend"]

_HINTS = {
    401: "set NOVACRON_SQL_TOKEN (or sql_token_file) to a token listed in the worker's api.tokens",
    403: "the access policies do not let this token's role read the history",
    503: "the worker is starting (access policies loading) or ClickHouse is unavailable; retry",
}


class HttpSqlBackend:
    """Queries through the ingest worker's web port; writes are refused (it is read-only)."""

    def __init__(
        self,
        url: str = "http://127.0.0.1:6066",
        token: str | None = None,
        timeout: float = 60.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        self.where = f"the ingest worker's /sql at {self.url}"
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.client = httpx.Client(timeout=timeout, transport=transport, headers=headers)

    def execute(self, sql: str) -> None:
        raise RejectedError("the SQL endpoint is read-only; DDL runs in the ingest worker")

    def insert_rows(self, table: str, rows: Sequence[Mapping[str, Any]]) -> None:
        raise RejectedError("the SQL endpoint is read-only; events reach ClickHouse through Kafka")

    def insert_columns(self, table: str, block: Any) -> None:
        raise RejectedError("the SQL endpoint is read-only; events reach ClickHouse through Kafka")

    def query_raw(self, sql: str, fmt: str = "JSONEachRow") -> bytes:
        try:
            resp = self.client.post(f"{self.url}/sql", params={"format": fmt}, content=sql.encode())
        except httpx.HTTPError as exc:
            raise BackendUnavailable(
                f"cannot reach the sink at {self.url} ({exc}); is `novacron worker --role ingest` "
                "running?"
            ) from exc
        if resp.status_code == 503:
            raise BackendUnavailable(f"{self.url}/sql answered 503: {_error_text(resp)}")
        if resp.status_code != 200:
            hint = _HINTS.get(resp.status_code, "")
            raise RejectedError(
                f"SQL endpoint answered {resp.status_code}: {_error_text(resp)}"
                + (f" ({hint})" if hint else "")
            )
        return resp.content

    def query(self, sql: str) -> list[dict[str, Any]]:
        raw = self.query_raw(sql, "JSONEachRow")
        return [orjson.loads(line) for line in raw.splitlines() if line.strip()]

    def healthy(self) -> bool:
        """Whether a worker answers on the web port (GET /health)."""
        try:
            return self.client.get(f"{self.url}/health", timeout=3).status_code == 200
        except httpx.HTTPError:
            return False

    def close(self) -> None:
        self.client.close()


def _error_text(resp: httpx.Response) -> str:
    try:
        data = resp.json()
    except ValueError:
        return resp.text[:2000]
    if isinstance(data, dict):
        reasons = data.get("reasons")
        return str(data.get("error", resp.text)) + (f": {'; '.join(reasons)}" if reasons else "")
    return resp.text[:2000]
