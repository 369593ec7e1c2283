"""Read-only SQL over the history: engines that parse and run under limits, and the guarded reader.

A query is parsed by ClickHouse (`parseQueryToJSON`), checked against the allow-list
(`sinks.sqlguard`), and run unchanged on a read session the engine itself keeps read-only
(`readonly = 1` set last, after the limits, so a query can change none of them). With chDB the
read session is a second session on the folder, so reads never wait for the writer's inserts.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

import orjson

from schemas.errors import BackendUnavailable, RejectedError
from sinks.backend import chdb_open_error
from sinks.config import SqlLimits
from sinks.ddl import AUDIT_TABLE, ROLLUP_TABLE, ROLLUP_VIEW, TABLES, quote
from sinks.sqlguard import CheckedQuery, GuardScope, ParsedQuery, check_sql, refuse

__all__ = [
    "FORMATS",
    "ChdbReadEngine",
    "GuardedReader",
    "ReadEngine",
    "ServerReadEngine",
    "history_scope",
]

FORMATS = frozenset({
    "JSON", "JSONEachRow", "JSONCompact", "JSONCompactEachRow", "CSV", "CSVWithNames",
    "TabSeparated", "TabSeparatedWithNames", "Pretty", "PrettyCompact", "Markdown",
})
"""Output formats a reader may ask for."""

_PARSE = (
    "SELECT {q:String} AS text, parseQueryToJSON({q:String}) AS ast, "
    "formatQuerySingleLine({q:String}) = "
    "formatQuerySingleLine(formatQueryFromJSON(parseQueryToJSON({q:String}))) AS round_trips"
)


class ReadEngine(Protocol):
    """Parses with the engine's parser and runs checked statements read-only under limits."""

    def parse(self, sql: str) -> ParsedQuery:
        """The engine's parse tree of one statement; RejectedError when it does not parse."""
        ...

    def run(self, sql: str, fmt: str) -> bytes:
        """Run a checked statement; RejectedError when the engine refuses or a limit hits."""
        ...

    def close(self) -> None:
        """Release sessions (and chDB's folder lock when no other session holds it)."""
        ...


def history_scope(database: str, limits: SqlLimits | None = None) -> GuardScope:
    """What readers of the history may touch: every table and view `sinks.ddl` creates."""
    tables = {spec.name for spec in TABLES.values()}
    tables |= {AUDIT_TABLE, ROLLUP_TABLE, ROLLUP_VIEW, "workflow_steps"}
    return GuardScope(
        database=database,
        tables=frozenset(tables),
        max_query_bytes=(limits or SqlLimits()).max_query_bytes,
    )


def _param(sql: str) -> str:
    """A query parameter value in ClickHouse's escaped text form (backslash, tab, newline …)."""
    return sql.translate(_ESCAPES)


_ESCAPES = str.maketrans({"\\": "\\\\", "\n": "\\n", "\t": "\\t", "\r": "\\r", "\0": "\\0"})


def _parsed(raw: bytes, sql: str) -> ParsedQuery:
    row = orjson.loads(raw.splitlines()[0])
    if row["text"] != sql:  # the parser must see exactly the text that will run
        raise refuse("the statement did not reach the parser unchanged")
    return ParsedQuery(ast=orjson.loads(row["ast"]), round_trips=bool(row["round_trips"]))


def _parse_error(exc: Exception) -> RejectedError:
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return refuse(f"the parser refused it: {first[:500]}")


class ChdbReadEngine:
    """Read sessions on a chDB folder, one per thread, each `USE db` + limits + `readonly = 1`.

    chDB 4.4 runs sessions on the same folder concurrently (measured: an insert on the writer's
    session takes ~5 ms while a read session runs a long query), so the /sql endpoint gets its
    own sessions and never queues behind the sink.
    """

    def __init__(self, path: Path, database: str, limits: SqlLimits | None = None) -> None:
        self.path, self.database = Path(path).resolve(), database
        self.limits = limits or SqlLimits()
        self._local = threading.local()
        self._sessions: list[Any] = []
        self._lock = threading.Lock()
        # closed at interpreter exit if nobody closed them: a session still open when chDB's
        # own globals are destroyed crashes or hangs the exiting process
        self._closer = weakref.finalize(self, _close_sessions, self._sessions, self._lock)
        self._session()  # open one now: a folder that cannot be opened fails here, not later

    def _session(self) -> Any:
        session = getattr(self._local, "session", None)
        if session is None:
            session = self._open()
            self._local.session = session
            with self._lock:
                self._sessions.append(session)
        return session

    def _open(self) -> Any:
        import chdb.session

        try:
            session = chdb.session.Session(str(self.path))
        except Exception as exc:
            raise BackendUnavailable(chdb_open_error(self.path, exc)) from exc
        try:
            session.query(f"USE {quote(self.database)}")
            for name, value in self.limits.engine_settings().items():
                session.query(f"SET {name} = {_setting_literal(value)}")
        except Exception as exc:
            session.close()
            raise BackendUnavailable(
                f"chDB folder {self.path} has no readable history database "
                f"{self.database!r}: {str(exc).strip()[:300]}"
            ) from exc
        return session

    def parse(self, sql: str) -> ParsedQuery:
        try:
            result = self._session().query(_PARSE, "JSONEachRow", params={"q": _param(sql)})
        except Exception as exc:
            raise _parse_error(exc) from exc
        return _parsed(result.bytes(), sql)

    def run(self, sql: str, fmt: str) -> bytes:
        try:
            result = self._session().query(sql, fmt)
        except Exception as exc:
            raise RejectedError(f"query failed: {str(exc).strip()[:2000]}") from exc
        return bytes(result.bytes())

    def close(self) -> None:
        self._closer()


def _close_sessions(sessions: list[Any], lock: threading.Lock) -> None:
    with lock:
        closing = list(sessions)
        sessions.clear()
    for session in closing:
        session.cleanup()


def _setting_literal(value: int | float | str) -> str:
    return f"'{value}'" if isinstance(value, str) else repr(value)


class ServerReadEngine:
    """Reads from a ClickHouse server (clickhouse-connect): limits and `readonly` per query.

    Give it a user that may only SELECT the history database, as for Grafana
    (`deploy/compose/clickhouse/initdb/grafana-user.sh`): the allow-list is the first line, the
    server's grants the last.
    """

    def __init__(
        self, url: str, database: str, limits: SqlLimits | None = None, client: Any = None
    ) -> None:
        self.database, self.limits = database, limits or SqlLimits()
        if client is None:
            import clickhouse_connect

            try:
                client = clickhouse_connect.get_client(dsn=url, database=database)
            except Exception as exc:
                raise BackendUnavailable(f"cannot connect to ClickHouse: {exc}") from exc
        self._client = client

    def parse(self, sql: str) -> ParsedQuery:
        try:
            raw = self._client.raw_query(_PARSE, parameters={"q": sql}, fmt="JSONEachRow")
        except Exception as exc:
            raise _parse_error(exc) from exc
        return _parsed(bytes(raw), sql)

    def run(self, sql: str, fmt: str) -> bytes:
        try:
            raw = self._client.raw_query(sql, fmt=fmt, settings=self.limits.engine_settings())
        except Exception as exc:
            if isinstance(exc, OSError) or type(exc).__name__ == "OperationalError":
                raise BackendUnavailable(f"ClickHouse server unavailable: {exc}") from exc
            raise RejectedError(f"query failed: {str(exc).strip()[:2000]}") from exc
        return bytes(raw)

    def close(self) -> None:
        self._client.close()


class GuardedReader:
    """A read-only Backend over a ReadEngine: every statement is checked, then run as written."""

    def __init__(self, engine: ReadEngine, scope: GuardScope, where: str) -> None:
        self.engine, self.scope, self.where = engine, scope, where

    def check(self, sql: str) -> CheckedQuery:
        """Parse and check without running (RejectedError saying why)."""
        return check_sql(sql, self.scope, self.engine)

    def query_raw(self, sql: str, fmt: str = "JSONEachRow") -> bytes:
        if fmt not in FORMATS:
            raise RejectedError(f"unknown output format {fmt!r}; use one of {sorted(FORMATS)}")
        return self.engine.run(self.check(sql).sql, fmt)

    def query(self, sql: str) -> list[dict[str, Any]]:
        raw = self.query_raw(sql, "JSONEachRow")
        return [orjson.loads(line) for line in raw.splitlines() if line.strip()]

    def execute(self, sql: str) -> None:
        raise RejectedError("history readers are read-only; DDL runs in the ingest worker")

    def insert_rows(self, table: str, rows: Sequence[Mapping[str, Any]]) -> None:
        raise RejectedError("history readers are read-only; events reach ClickHouse via Kafka")

    def insert_columns(self, table: str, block: Any) -> None:
        raise RejectedError("history readers are read-only; events reach ClickHouse via Kafka")

    def close(self) -> None:
        self.engine.close()
