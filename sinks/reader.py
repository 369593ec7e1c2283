"""One factory for every reader of the history: the CLI, reports, the demo, dashboards' tests.

- ClickHouse server: connect directly (every process may).
- chDB, folder not held by any process: open the folder directly, read-only.
- chDB, folder held (the ingest worker runs), or a worker named explicitly (`--sql-url`,
  NOVACRON_SQL_URL): go through that worker's `/sql` with the token.
- Neither: a BackendUnavailable that says what to run.

Every route applies the same read-only checks and limits (`sinks.readonly`), so a query gets the
same answer, or the same refusal, whichever route serves it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

from schemas.errors import BackendUnavailable
from sinks.backend import folder_locked
from sinks.config import ClickHouseConfig, SqlLimits
from sinks.http import HttpSqlBackend
from sinks.readonly import ChdbReadEngine, GuardedReader, ServerReadEngine, history_scope

__all__ = ["HistoryReader", "open_reader"]


class HistoryReader(Protocol):
    """What readers need: rows, raw formats, and where the answers come from."""

    where: str
    """Human-readable route, e.g. "chDB folder var/chdb (read directly)"."""

    def query(self, sql: str) -> list[dict[str, Any]]:
        """Rows of one read statement."""
        ...

    def query_raw(self, sql: str, fmt: str = "JSONEachRow") -> bytes:
        """One read statement in an output format of `sinks.readonly.FORMATS`."""
        ...

    def close(self) -> None:
        """Release the connection, session or folder."""
        ...


def open_reader(
    cfg: ClickHouseConfig,
    *,
    sql_url: str,
    token: str | None = None,
    limits: SqlLimits | None = None,
    explicit_url: bool = False,
) -> HistoryReader:
    """The reader for this configuration (see the module docstring for the routes).

    `explicit_url`: the user named the worker to read through (`--sql-url`, NOVACRON_SQL_URL), so
    chDB is read through it even when a local folder is free (it may be another folder)."""
    limits = limits or SqlLimits()
    scope = history_scope(cfg.database, limits)
    if cfg.backend == "server":
        assert cfg.url is not None  # the config validator guarantees it
        engine = ServerReadEngine(cfg.url, cfg.database, limits)
        return GuardedReader(engine, scope, "the ClickHouse server")
    path = Path(cfg.path).resolve()
    if explicit_url:
        return _through_worker(path, sql_url, token, explicit=True)
    if not (path / "metadata").is_dir() and not folder_locked(path):
        raise BackendUnavailable(
            f"no chDB history at {path} (no such data folder): run `novacron demo` or "
            "`novacron worker --role ingest` first, or point NOVACRON_CLICKHOUSE__PATH at it"
        )
    if not folder_locked(path):
        return GuardedReader(ChdbReadEngine(path, cfg.database, limits), scope,
                             f"chDB folder {path} (read directly; no worker holds it)")
    return _through_worker(path, sql_url, token)


def _through_worker(path: Path, sql_url: str, token: str | None,
                    explicit: bool = False) -> HttpSqlBackend:
    remote = HttpSqlBackend(sql_url, token)
    if not remote.healthy() and explicit and not folder_locked(path):
        remote.close()
        raise BackendUnavailable(f"no ingest worker answers at {sql_url} (--sql-url / "
                                 "NOVACRON_SQL_URL): start it, or unset the address to read "
                                 "the local chDB folder directly")
    if not remote.healthy():
        remote.close()
        raise BackendUnavailable(
            f"the chDB folder {path} is held by another process, and no ingest worker answers "
            f"at {sql_url}: set NOVACRON_SQL_URL to the web address of the worker holding it, "
            "or stop that process and read the folder directly"
        )
    if token is None:
        remote.close()
        raise BackendUnavailable(
            f"the ingest worker at {sql_url} holds {path}; reading through its /sql needs a "
            "token: set NOVACRON_SQL_TOKEN (or NOVACRON_SQL_TOKEN_FILE) to a token of api.tokens"
        )
    return remote
