"""ClickHouse backends behind one Protocol: chDB, a server, an in-memory fake, a flaky wrapper."""

from __future__ import annotations

import threading
import weakref
from collections import defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import orjson

from schemas.errors import BackendUnavailable, NonRetryableError, RejectedError
from sinks.config import ClickHouseConfig

if TYPE_CHECKING:
    from sinks.columns import ColumnBlock

__all__ = [
    "Backend",
    "ChdbBackend",
    "FlakyBackend",
    "MemoryBackend",
    "ServerBackend",
    "chdb_open_error",
    "encode_json_rows",
    "folder_locked",
    "open_backend",
]


@runtime_checkable
class Backend(Protocol):
    """What the history layer needs from ClickHouse. Calls block: run them off the event loop."""

    def execute(self, sql: str) -> None:
        """Run a statement that returns nothing (DDL)."""

    def insert_rows(self, table: str, rows: Sequence[Mapping[str, Any]]) -> None:
        """Insert rows in ONE INSERT (`table` may be `db.table`); BackendUnavailable on failure."""

    def insert_columns(self, table: str, block: ColumnBlock) -> None:
        """Insert a column-wise block of event rows in ONE INSERT, like `insert_rows`."""

    def query(self, sql: str) -> list[dict[str, Any]]:
        """Run a SELECT and return its rows as dicts."""

    def query_raw(self, sql: str, fmt: str) -> bytes:
        """Run a SELECT and return the result in a ClickHouse output format (JSON, CSV, …)."""

    def close(self) -> None:
        """Release the connection (and chDB's folder lock)."""


def encode_json_rows(rows: Sequence[Mapping[str, Any]]) -> bytes:
    """JSONEachRow body: one JSON object per line (DateTime64 values must already be strings)."""
    return b"\n".join(orjson.dumps(r) for r in rows) + b"\n"


def _parse_json_rows(raw: bytes | str) -> list[dict[str, Any]]:
    data = raw.encode() if isinstance(raw, str) else raw
    return [orjson.loads(line) for line in data.splitlines() if line.strip()]


class ChdbBackend:
    """Embedded ClickHouse (chDB) on a local folder.

    chDB allows ONE data folder per process (a second path fails until every session on the first
    is closed) and locks the folder against other processes; both cases raise NonRetryableError
    naming the folder.
    """

    # Quote-free 64-bit integers so counts come back as ints, like the server backend returns.
    _STARTUP = "output_format_json_quote_64bit_integers=0"

    def __init__(self, path: Path):
        import chdb.session

        self.path = Path(path).resolve()
        self.path.mkdir(parents=True, exist_ok=True)
        try:
            self._session = chdb.session.Session(f"{self.path}?{self._STARTUP}")
        except Exception as exc:  # chDB raises RuntimeError subclasses with the engine's text
            raise NonRetryableError(chdb_open_error(self.path, exc)) from exc
        self._lock = threading.Lock()
        # closed at interpreter exit if nobody closed it: a session still open when chDB's own
        # globals are destroyed crashes or hangs the exiting process
        self._closer = weakref.finalize(self, self._session.cleanup)

    def execute(self, sql: str) -> None:
        try:
            self._session.query(sql)
        except Exception as exc:
            raise NonRetryableError(f"chDB statement failed: {exc}") from exc

    def insert_rows(self, table: str, rows: Sequence[Mapping[str, Any]]) -> None:
        if not rows:
            return
        body = encode_json_rows(rows)
        try:
            with self._lock, self._session.send_insert(f"INSERT INTO {table}", "JSONEachRow") as i:
                i.append(body)
                i.finish()
        except Exception as exc:
            raise BackendUnavailable(f"chDB insert into {table} failed: {exc}") from exc

    def insert_columns(self, table: str, block: ColumnBlock) -> None:
        """One ArrowStream INSERT: columns go in as typed arrays, no row or JSON per record."""
        if not block.count:
            return
        try:
            body = block.arrow_stream()
            with self._lock, self._session.send_insert(f"INSERT INTO {table}", "ArrowStream") as i:
                i.append(body)
                i.finish()
        except Exception as exc:
            raise BackendUnavailable(f"chDB insert into {table} failed: {exc}") from exc

    def query(self, sql: str) -> list[dict[str, Any]]:
        return _parse_json_rows(self.query_raw(sql, "JSONEachRow"))

    def query_raw(self, sql: str, fmt: str) -> bytes:
        try:
            result = self._session.query(sql, fmt)
        except Exception as exc:
            raise RejectedError(f"query failed: {exc}") from exc
        return result.bytes() if hasattr(result, "bytes") else str(result).encode()

    def close(self) -> None:
        self._closer()


def folder_locked(path: Path) -> bool:
    """Whether another process holds ClickHouse's flock on `<path>/status` (probe after failure)."""
    import fcntl

    try:
        with open(path / "status", "rb") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            fcntl.flock(fh, fcntl.LOCK_UN)
    except BlockingIOError:
        return True
    except OSError:
        return False
    return False


def chdb_open_error(path: Path, exc: Exception) -> str:
    text = str(exc)
    # chDB prints the lock message to stderr and raises a generic error, so probe the lock.
    if "Cannot lock file" in text or "Another server instance" in text or folder_locked(path):
        return (
            f"chDB folder {path} is locked by another process (only one process may open it: "
            "stop it, or query through its read-only SQL endpoint)"
        )
    if "already initialized with path" in text:
        return (
            f"cannot open chDB folder {path}: this process already has another chDB folder open "
            f"(one folder per process; close the other backend first). Engine said: {text}"
        )
    return f"cannot open chDB folder {path}: {text}"


_UNQUOTED_INTS = {"output_format_json_quote_64bit_integers": 0}


class ServerBackend:
    """A ClickHouse server or cluster through clickhouse-connect (HTTP)."""

    def __init__(self, url: str, database: str = "default", client: Any = None):
        self.database = database
        if client is None:
            import clickhouse_connect

            try:
                client = clickhouse_connect.get_client(dsn=url)
            except Exception as exc:
                msg = f"cannot connect to ClickHouse at {_safe(url)}: {exc}"
                raise BackendUnavailable(msg) from exc
        self._client = client

    def execute(self, sql: str) -> None:
        try:
            self._client.command(sql)
        except Exception as exc:
            raise _server_error(exc, "statement") from exc

    def insert_rows(self, table: str, rows: Sequence[Mapping[str, Any]]) -> None:
        if not rows:
            return
        sql = f"INSERT INTO {table} FORMAT JSONEachRow"
        try:
            self._client.raw_insert(table, insert_block=encode_json_rows(rows), fmt="JSONEachRow")
        except Exception as exc:
            raise BackendUnavailable(f"ClickHouse {sql} failed: {exc}") from exc

    def insert_columns(self, table: str, block: ColumnBlock) -> None:
        self.insert_rows(table, block.rows())  # the same JSONEachRow INSERT as before

    def query(self, sql: str) -> list[dict[str, Any]]:
        return _parse_json_rows(self.query_raw(sql, "JSONEachRow", _UNQUOTED_INTS))

    def query_raw(self, sql: str, fmt: str, settings: dict[str, Any] | None = None) -> bytes:
        try:
            return bytes(self._client.raw_query(sql, fmt=fmt, settings=settings))
        except Exception as exc:
            raise _server_error(exc, "query") from exc

    def close(self) -> None:
        self._client.close()


def _safe(url: str) -> str:
    """The URL without its password, for error messages."""
    head, sep, tail = url.rpartition("@")
    return ("…@" + tail) if sep else url


def _server_error(exc: Exception, what: str) -> Exception:
    # A server that does not answer is retryable; a server that answers with an error is not.
    name = type(exc).__name__
    if name in ("OperationalError", "ConnectionError") or isinstance(exc, OSError):
        return BackendUnavailable(f"ClickHouse server unavailable during {what}: {exc}")
    return RejectedError(f"ClickHouse rejected the {what}: {exc}")


class MemoryBackend:
    """Fake for unit tests: keeps inserted rows per table and the executed statements."""

    def __init__(self) -> None:
        self.tables: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self.statements: list[str] = []
        self.inserts = 0
        self.closed = False

    def execute(self, sql: str) -> None:
        self.statements.append(sql)

    def insert_rows(self, table: str, rows: Sequence[Mapping[str, Any]]) -> None:
        self.inserts += 1
        self.tables[table].extend(dict(r) for r in rows)

    def insert_columns(self, table: str, block: ColumnBlock) -> None:
        self.insert_rows(table, block.rows())  # kept as the rows `to_row` builds

    def query(self, sql: str) -> list[dict[str, Any]]:
        raise RejectedError("MemoryBackend does not run SQL; read .tables or use chDB")

    def query_raw(self, sql: str, fmt: str) -> bytes:
        raise RejectedError("MemoryBackend does not run SQL; read .tables or use chDB")

    def close(self) -> None:
        self.closed = True


class FlakyBackend:
    """Wraps a backend for outage tests: while `down` (or for the next `fail_next` calls),
    inserts and queries raise BackendUnavailable."""

    def __init__(self, inner: Backend):
        self.inner = inner
        self.down = False
        self.fail_next = 0
        self.failures = 0

    def _check(self, what: str) -> None:
        if self.fail_next > 0:
            self.fail_next -= 1
        elif not self.down:
            return
        self.failures += 1
        raise BackendUnavailable(f"simulated outage during {what}")

    def execute(self, sql: str) -> None:
        self.inner.execute(sql)

    def insert_rows(self, table: str, rows: Sequence[Mapping[str, Any]]) -> None:
        self._check(f"insert into {table}")
        self.inner.insert_rows(table, rows)

    def insert_columns(self, table: str, block: ColumnBlock) -> None:
        self.insert_rows(table, block.rows())  # through insert_rows, which tests override

    def query(self, sql: str) -> list[dict[str, Any]]:
        self._check("query")
        return self.inner.query(sql)

    def query_raw(self, sql: str, fmt: str) -> bytes:
        self._check("query")
        return self.inner.query_raw(sql, fmt)

    def close(self) -> None:
        self.inner.close()


def open_backend(cfg: ClickHouseConfig) -> Backend:
    """Open the configured backend (chDB folder or server URL)."""
    if cfg.backend == "server":
        assert cfg.url is not None  # the config validator guarantees it
        return ServerBackend(cfg.url, cfg.database)
    return ChdbBackend(cfg.path)
