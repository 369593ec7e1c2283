"""`/sql` on the ingest worker's web port: authenticated, authorised, checked, read-only SQL.

Order of refusal: 503 until the access policies are loaded, 401 without a known bearer token,
403 when the `access` policies do not let the subject `read` the `history`, 400 for a format not
in the fixed list or a statement the checker refuses (the reason is in the body). Queries run on
their own read sessions and threads, so they never wait for the sink's inserts (nor it for them).
"""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import faust
from prometheus_client import Counter, Gauge

from schemas.errors import BackendUnavailable, RejectedError
from sinks.readonly import (
    FORMATS,
    ChdbReadEngine,
    GuardedReader,
    ReadEngine,
    ServerReadEngine,
    history_scope,
)
from streams.access import AccessHost
from streams.app import WorkerContext
from streams.metrics import REGISTRY

__all__ = ["SqlEndpoint", "mount_sql", "sql_endpoint"]

log = logging.getLogger(__name__)

_NDJSON = "application/x-ndjson"
_CONTENT_TYPES = {"JSON": "application/json", "JSONCompact": "application/json",
                  "JSONEachRow": _NDJSON, "JSONCompactEachRow": _NDJSON,
                  "CSV": "text/csv", "CSVWithNames": "text/csv"}
_QUERIES = Counter("novacron_sql_queries_total", "Queries to /sql by outcome", ["outcome"],
                   registry=REGISTRY)
_RUNNING = Gauge("novacron_sql_queries_running", "Queries /sql is running now", registry=REGISTRY)


class SqlEndpoint:
    """The request handling of /sql, independent of the web framework."""

    def __init__(self, reader: GuardedReader, access: AccessHost, max_concurrent: int) -> None:
        self.reader, self.access = reader, access
        self.executor = ThreadPoolExecutor(max_concurrent, thread_name_prefix="sql-read")

    async def handle(
        self, method: str, headers: dict[str, str], query: str, fmt: str
    ) -> tuple[int, bytes | dict[str, Any], str]:
        """(status, body, content type) for one request."""
        if not self.access.ready.is_set():
            why = self.access.error or "access policies are still loading; retry"
            return self._refused(503, {"error": why})
        subject, denied = self.access.authoriser.check(
            headers, "read", {"type": "history", "path": "/sql"}, method
        )
        if denied is not None:
            return self._refused(denied.status, denied.body())
        if fmt not in FORMATS:
            return self._refused(400, {"error": f"unknown format {fmt[:40]!r}; "
                                                f"use one of {sorted(FORMATS)}"})
        loop = asyncio.get_running_loop()
        try:
            with _RUNNING.track_inprogress():
                data = await loop.run_in_executor(self.executor, self.reader.query_raw, query, fmt)
        except RejectedError as exc:
            assert subject is not None
            log.info("/sql refused for %s: %s", subject.user, exc)
            return self._refused(400, {"error": str(exc)})
        except BackendUnavailable as exc:
            return self._refused(503, {"error": str(exc)})
        _QUERIES.labels("ok").inc()
        return 200, data, _CONTENT_TYPES.get(fmt, "text/plain")

    @staticmethod
    def _refused(status: int, body: dict[str, Any]) -> tuple[int, dict[str, Any], str]:
        _QUERIES.labels(str(status)).inc()
        return status, body, "application/json"

    def close(self) -> None:
        self.executor.shutdown(wait=False, cancel_futures=True)
        self.reader.close()


def sql_endpoint(ctx: WorkerContext) -> SqlEndpoint:
    """The endpoint of an ingest worker: read sessions next to the writer's, access policies."""
    cfg, limits = ctx.settings.clickhouse, ctx.settings.sql_limits
    engine: ReadEngine
    if cfg.backend == "server":
        assert cfg.url is not None  # the config validator guarantees it
        engine = ServerReadEngine(cfg.url, cfg.database, limits)
    else:
        engine = ChdbReadEngine(cfg.path, cfg.database, limits)
    reader = GuardedReader(engine, history_scope(cfg.database, limits), "ingest /sql")
    return SqlEndpoint(reader, AccessHost(ctx), limits.max_concurrent)


def mount_sql(app: faust.App, endpoint: SqlEndpoint) -> None:
    """Serve the endpoint at /sql: GET ?query=… or POST the statement as the body; ?format=…"""

    async def respond(view: faust.web.View, request: faust.web.Request, query: str) -> Any:
        fmt = request.query.get("format", "JSONEachRow")
        status, body, ctype = await endpoint.handle(
            request.method, dict(request.headers), query, fmt
        )
        if isinstance(body, dict):
            headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
            response = view.json(body, status=status)
            if headers:
                response.headers.update(headers)  # type: ignore[attr-defined]
            return response
        return view.bytes(body, content_type=ctype)

    @app.page("/sql")
    class SqlView(faust.web.View):
        """Read-only SQL over the history (see streams.sqlview)."""

        async def get(self, request: faust.web.Request) -> Any:
            return await respond(self, request, request.query.get("query", ""))

        async def post(self, request: faust.web.Request) -> Any:
            body = request.query.get("query") or await request.text()
            return await respond(self, request, body)
