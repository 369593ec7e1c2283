"""`novacron sql` and `novacron audit`: read the history through the sink's read-only endpoint."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime
from typing import Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from sinks.http import HttpSqlBackend
from sinks.queries import audit_rows, chain, render_sql, report_names, run_report
from streams.settings import Settings

console = Console()
err = Console(stderr=True)
SQL_URL = typer.Option(
    "http://127.0.0.1:6066",
    "--sql-url",
    envvar="NOVACRON_SQL_URL",
    help="Web address of the ingest worker (it owns ClickHouse)",
)
audit_app = typer.Typer(help="Audit reports, causal chains and tamper checks over the history.")


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
    sql_url: str = SQL_URL,
) -> None:
    """Run a read-only SQL query against the history (ClickHouse)."""
    rows = _query(HttpSqlBackend(sql_url), query)
    _emit(rows, fmt)


def _query(backend: HttpSqlBackend, query: str) -> list[dict[str, Any]]:
    from schemas.errors import NovacronError

    try:
        return backend.query(query)
    except NovacronError as exc:
        err.print(f"[red]{escape(str(exc))}[/]")
        raise typer.Exit(1) from exc


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
    sql_url: str = SQL_URL,
) -> None:
    """Audit report for a time range: decisions, approvals, actions, drift, compliance, DLQ."""
    backend, db = HttpSqlBackend(sql_url), Settings().clickhouse.database
    params = {"start": _when(since), "end": _when(until), "standard": standard}
    sections = {name: _query_report(backend, name, db, params) for name in report_names()}
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


def _query_report(
    backend: HttpSqlBackend, name: str, db: str, params: dict[str, Any]
) -> list[dict[str, Any]]:
    try:
        return run_report(backend, name, db, **params)
    except Exception as exc:  # one broken section must not hide the others
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
def audit_chain(correlation_id: str, sql_url: str = SQL_URL) -> None:
    """Every event of one causal chain: anomaly → decision → verdict → approval → action…"""
    rows = chain(HttpSqlBackend(sql_url), Settings().clickhouse.database, correlation_id)
    _emit(rows, "table", f"chain {correlation_id}")


@audit_app.command("verify")
def audit_verify(sql_url: str = SQL_URL) -> None:
    """Check the hash chain of the audit log; exit 1 if any row was altered or removed."""
    from sinks.audit import verify_chain

    rows = audit_rows(HttpSqlBackend(sql_url), Settings().clickhouse.database)
    problems = verify_chain(rows)
    for problem in problems:
        err.print(f"[red]{problem}[/]")
    console.print(f"{len(rows)} audit rows, {len(problems)} problems")
    raise typer.Exit(1 if problems else 0)


@audit_app.command("sql")
def audit_sql(name: str, db: str = typer.Option("novacron", help="Database")) -> None:
    """Print one report's SQL (to paste into Grafana or clickhouse-client)."""
    print(render_sql(name, db))
