"""Read-only SQL guard for the history endpoint: one SELECT-like statement, no side effects."""

from __future__ import annotations

import re
from typing import Any

from schemas.errors import RejectedError
from sinks.backend import Backend

__all__ = ["FORMATS", "check_readonly", "readonly_sql", "run_readonly"]

_START = {"SELECT", "WITH", "SHOW", "DESCRIBE", "DESC", "EXPLAIN"}
_FORBIDDEN_WORDS = {
    "INSERT", "ALTER", "DROP", "CREATE", "ATTACH", "DETACH", "RENAME", "TRUNCATE", "OPTIMIZE",
    "DELETE", "UPDATE", "GRANT", "REVOKE", "KILL", "SET", "USE", "INTO", "OUTFILE", "EXCHANGE",
    "UNDROP", "BACKUP", "RESTORE", "SETTINGS", "FORMAT", "INFILE",
}
# Table functions that read or write outside the database (files, URLs, other servers, programs).
_FORBIDDEN_FUNCTIONS = {
    "file", "filecluster", "url", "urlcluster", "s3", "s3cluster", "s3queue", "gcs", "oss",
    "cosn", "remote", "remotesecure", "cluster", "clusterallreplicas", "hdfs", "hdfscluster",
    "mysql", "postgresql", "postgres", "jdbc", "odbc", "mongodb", "redis", "sqlite",
    "executable", "input", "azureblobstorage", "azureblobstoragecluster", "deltalake",
    "iceberg", "icebergs3", "hudi", "hive", "dictionary", "loop", "format", "arrowflight",
}
FORMATS = {
    "JSON", "JSONEachRow", "JSONCompact", "JSONCompactEachRow", "CSV", "CSVWithNames",
    "TabSeparated", "TabSeparatedWithNames", "Pretty", "PrettyCompact", "Markdown",
}
"""Output formats `run_readonly` accepts besides `rows` (a list of dicts)."""

_TOKEN = re.compile(
    r"""(?P<str>'(?:[^'\\]|\\.|'')*')|(?P<qid>`(?:[^`\\]|\\.|``)*`|"(?:[^"\\]|\\.|"")*")"""
    r"""|(?P<line>--[^\n]*)|(?P<block>/\*.*?\*/)|(?P<bad>['"`]|/\*|\#)""",
    re.DOTALL,
)


def _mask(sql: str) -> str:
    """Blank out literals and comments so keywords are only searched in real SQL text."""

    def repl(m: re.Match[str]) -> str:
        if m.lastgroup == "bad":
            what = "a '#' (not a comment here)" if m.group() == "#" else "an unterminated quote"
            raise RejectedError(f"read-only SQL rejected: {what} or comment")
        return " 0 " if m.lastgroup == "str" else " _q " if m.lastgroup == "qid" else " "

    return _TOKEN.sub(repl, sql)


def check_readonly(sql: str) -> str:
    """Return the statement (trailing `;` removed) if it is a single read-only query.

    Raises RejectedError saying why otherwise. This is the first line of defence; the engine
    also runs the query with `readonly=1` (see `readonly_sql`).
    """
    masked = _mask(sql).strip()
    body = masked.rstrip(";").rstrip()
    if not body:
        raise RejectedError("read-only SQL rejected: empty statement")
    if ";" in body:
        raise RejectedError("read-only SQL rejected: only one statement is allowed")
    words = re.findall(r"[A-Za-z_][A-Za-z0-9_]*", body)
    if words[0].upper() not in _START:
        raise RejectedError(
            f"read-only SQL rejected: {words[0].upper()} is not allowed "
            "(only SELECT, WITH, SHOW, DESCRIBE, EXPLAIN)"
        )
    bad = sorted({w.upper() for w in words} & _FORBIDDEN_WORDS)
    if bad:
        raise RejectedError(f"read-only SQL rejected: keyword {', '.join(bad)} is not allowed")
    calls = {m.lower() for m in re.findall(r"([A-Za-z_][A-Za-z0-9_]*)\s*\(", body)}
    if calls & _FORBIDDEN_FUNCTIONS:
        names = ", ".join(sorted(calls & _FORBIDDEN_FUNCTIONS))
        raise RejectedError(f"read-only SQL rejected: table function {names}() is not allowed")
    return sql.strip().rstrip(";").rstrip()


def readonly_sql(sql: str, max_seconds: int = 30, max_rows: int = 100_000) -> str:
    """The checked statement with engine-level limits; readonly=1 last so nothing can undo it."""
    checked = check_readonly(sql)
    return (
        f"{checked}\nSETTINGS max_execution_time = {int(max_seconds)}, "
        f"max_result_rows = {int(max_rows)}, result_overflow_mode = 'throw', readonly = 1"
    )


def run_readonly(backend: Backend, sql: str, fmt: str = "rows") -> Any:
    """Run user SQL read-only: `rows` → list of dicts, a format name in FORMATS → bytes."""
    guarded = readonly_sql(sql)
    if fmt == "rows":
        return backend.query(guarded)
    if fmt not in FORMATS:
        raise RejectedError(f"unknown output format {fmt!r}; use rows or one of {sorted(FORMATS)}")
    return backend.query_raw(guarded, fmt)
