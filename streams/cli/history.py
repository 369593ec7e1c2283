"""`novacron sql` and `novacron audit`: read the history, with or without a running worker.

Readers come from `sinks.reader.open_reader`: a ClickHouse server directly; a chDB folder
directly when no process holds it, else the ingest worker's /sql with the token.
"""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from schemas.errors import NovacronError
from sinks.queries import chain, render_sql, report_names, run_report
from sinks.reader import HistoryReader, open_reader
from streams.settings import Settings

console = Console()
err = Console(stderr=True)
SQL_URL = typer.Option(
    None,
    "--sql-url",
    envvar="NOVACRON_SQL_URL",
    help="Web address of the ingest worker, e.g. http://127.0.0.1:6066 (used when it holds the "
    "chDB folder; default from the web settings)",
    show_default=False,
)
audit_app = typer.Typer(help="Audit reports, causal chains and tamper checks over the history.")


def open_history(settings: Settings, sql_url: str | None = None) -> HistoryReader:
    """The history reader for these settings; exits 1 with what to run when there is none."""
    url = (sql_url or settings.ingest_url()).rstrip("/")
    if urlsplit(url).path not in ("", "/"):
        raise fail(
            f"NOVACRON_SQL_URL / --sql-url is the ingest worker's base web address, e.g. "
            f"http://127.0.0.1:6066 (without a path such as /sql); got {url}"
        )
    try:
        return open_reader(
            settings.clickhouse,
            sql_url=url,
            token=settings.client_sql_token(),
            limits=settings.sql_limits,
            explicit_url=bool(sql_url or settings.sql_url),
        )
    except NovacronError as exc:
        err.print(f"[red]cannot read the history:[/] {escape(str(exc))}")
        raise typer.Exit(1) from exc


def fail(message: str) -> typer.Exit:
    """Print an error and return the Exit(1) to raise."""
    err.print(f"[red]{escape(message)}[/]")  # messages quote user input: never parse it as markup
    return typer.Exit(1)


def rows_table(rows: list[dict[str, Any]], title: str = "") -> Table:
    """A rich table of query rows."""
    table = Table(title=title or None)
    for column in rows[0] if rows else {}:
        table.add_column(str(column))
    for row in rows:
        table.add_row(*(_cell(v) for v in row.values()))
    return table


def _cell(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text if len(text) <= 80 else text[:77] + "..."


def sql_app(
    query: str = typer.Argument(..., help="One read-only statement (SELECT, WITH, SHOW, DESCRIBE)"),
    fmt: str = typer.Option("table", "--format", help="table, json or csv"),
    sql_url: str | None = SQL_URL,
) -> None:
    """Run a read-only SQL query against the history (ClickHouse).

    Unqualified table names are the history database's (`SELECT count() FROM metric_samples`).
    Only reads of the history tables are allowed; see docs/history.md.
    """
    reader = open_history(Settings(), sql_url)
    try:
        rows = _query(reader, query)
    finally:
        reader.close()
    _emit(rows, fmt)


def _query(reader: HistoryReader, query: str) -> list[dict[str, Any]]:
    try:
        return reader.query(query)
    except NovacronError as exc:
        raise fail(str(exc)) from exc


def _emit(rows: list[dict[str, Any]], fmt: str, title: str = "") -> None:
    if fmt == "json":
        console.print_json(data=rows)
    elif fmt == "csv":
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=list(rows[0]) if rows else [])
        writer.writeheader()
        writer.writerows(rows)
        print(out.getvalue(), end="")
    else:
        console.print(rows_table(rows, title))


def _when(value: str | None) -> datetime | None:
    if value is None:
        return None
    parsed = datetime.fromisoformat(value)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


@audit_app.command("report")
def audit_report(
    since: str | None = typer.Option(None, "--from", help="Start (ISO 8601, UTC if no zone)"),
    until: str | None = typer.Option(None, "--to", help="End (ISO 8601)"),
    standard: str = typer.Option("", help="Compliance standard filter, e.g. pci-dss"),
    fmt: str = typer.Option("markdown", "--format", help="markdown, html, json or csv"),
    sql_url: str | None = SQL_URL,
) -> None:
    """Audit report for a time range: decisions, approvals, actions, drift, compliance, DLQ.

    Exits 1 when any section could not be read (the report still shows the others)."""
    settings = Settings()
    params = {"start": _when(since), "end": _when(until), "standard": standard}
    reader = open_history(settings, sql_url)
    try:
        sections = {
            name: _query_report(reader, name, settings.clickhouse.database, params)
            for name in report_names()
        }
    finally:
        reader.close()
    if fmt == "json":
        print(json.dumps(sections, default=str, indent=2))
    elif fmt == "csv":
        for name, rows in sections.items():
            print(f"# {name}")
            _emit(rows, "csv")
    elif fmt == "html":
        print(_html(sections, since, until))
    else:
        print(_markdown(sections, since, until))
    failed = [name for name, rows in sections.items() if _failed(rows)]
    if failed:
        raise fail(f"{len(failed)} of {len(sections)} report sections failed: {', '.join(failed)}")


def _failed(rows: list[dict[str, Any]]) -> bool:
    return len(rows) == 1 and set(rows[0]) == {"error"}


def _query_report(
    reader: HistoryReader, name: str, db: str, params: dict[str, Any]
) -> list[dict[str, Any]]:
    try:
        return run_report(reader, name, db, **params)
    except NovacronError as exc:  # one broken section must not hide the others
        return [{"error": str(exc)}]


def _markdown(
    sections: dict[str, list[dict[str, Any]]], since: str | None, until: str | None
) -> str:
    lines = [f"# NovaCron audit report ({since or 'beginning'} – {until or 'now'})", ""]
    for name, rows in sections.items():
        lines += [f"## {name.replace('_', ' ')}", ""]
        if not rows:
            lines += ["(no rows)", ""]
            continue
        cols = list(rows[0])
        lines += ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
        lines += ["| " + " | ".join(_cell(r.get(c)) for c in cols) + " |" for r in rows] + [""]
    return "\n".join(lines)


def _html(sections: dict[str, list[dict[str, Any]]], since: str | None, until: str | None) -> str:
    import html

    parts = [
        f"<html><head><meta charset='utf-8'><title>NovaCron audit</title></head><body>"
        f"<h1>NovaCron audit report ({html.escape(since or 'beginning')} – "
        f"{html.escape(until or 'now')})</h1>"
    ]
    for name, rows in sections.items():
        parts.append(f"<h2>{html.escape(name.replace('_', ' '))}</h2>")
        parts.append(_bar_chart(rows))
        parts.append(
            "<table border='1'>"
            + "".join(
                "<tr>" + "".join(f"<td>{html.escape(_cell(v))}</td>" for v in r.values()) + "</tr>"
                for r in rows
            )
            + "</table>"
        )
    return "".join(parts) + "</body></html>"


def _bar_chart(rows: list[dict[str, Any]]) -> str:
    """An inline SVG bar chart of the first numeric column by the first column."""
    numeric = [k for k, v in (rows[0].items() if rows else []) if isinstance(v, (int, float))]
    if not rows or not numeric:
        return ""
    label, value = next(iter(rows[0])), numeric[0]
    top = max(float(r[value]) for r in rows) or 1.0
    bars = "".join(
        f"<rect x='0' y='{i * 22}' width='{300 * float(r[value]) / top:.0f}' height='18'"
        " fill='#4a7'/>"
        f"<text x='305' y='{i * 22 + 14}' font-size='12'>{r[label]}: {r[value]}</text>"
        for i, r in enumerate(rows[:20])
    )
    return f"<svg width='600' height='{22 * min(len(rows), 20)}'>{bars}</svg>"


@audit_app.command("chain")
def audit_chain(correlation_id: str, sql_url: str | None = SQL_URL) -> None:
    """Every event of one causal chain: anomaly → decision → verdict → approval → action…

    Exits 1 when no event carries the correlation id."""
    settings = Settings()
    reader = open_history(settings, sql_url)
    try:
        rows = chain(reader, settings.clickhouse.database, correlation_id)
    except NovacronError as exc:
        raise fail(str(exc)) from exc
    finally:
        reader.close()
    if not rows:
        raise fail(f"no event has correlation id {correlation_id!r} (looked in {reader.where})")
    _emit(rows, "table", f"chain {correlation_id}")


@audit_app.command("sql")
def audit_sql(name: str, db: str = typer.Option("novacron", help="Database")) -> None:
    """Print one report's SQL (to paste into Grafana or clickhouse-client)."""
    print(render_sql(name, db))
