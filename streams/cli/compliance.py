"""`novacron compliance`: scan Terraform plans and states, list the control library."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

import orjson
import typer
from rich.console import Console
from rich.table import Table

from policies.compliance import (
    STANDARD_TITLES,
    ControlLibrary,
    RegoEvaluator,
    Scanner,
    ScanReport,
    StandardScore,
    load_library,
    load_resources,
    standard_or_all,
)
from schemas.errors import NovacronError

app = typer.Typer(help="Compliance: scan Terraform plans and states; list the control library.")
console = Console()
err = Console(stderr=True)

COLORS = {"CRITICAL": "bold red", "HIGH": "red", "MEDIUM": "yellow", "LOW": "cyan", "INFO": "dim"}


class Format(StrEnum):
    table = "table"
    json = "json"


StandardOpt = typer.Option(
    "all", "--standard", "-s",
    help="cis, pci-dss, hipaa, soc2, gdpr, iso27001, or all.",
)
LibraryOpt = typer.Option(
    None, "--library", help="Folder with controls/*.yaml and rego/*.rego (default: shipped)."
)


def _fail(message: str) -> typer.Exit:
    err.print(f"[red]error:[/] {message}")
    return typer.Exit(2)


def _library(folder: Path | None) -> ControlLibrary:
    if folder is None:
        return load_library()
    return load_library(folder / "controls", folder / "rego")


@app.command("scan")
def scan(
    path: Path = typer.Argument(
        ..., help="`terraform show -json` plan or state, a v4 state file, or a resource list."
    ),
    standard: str = StandardOpt,
    fmt: Format = typer.Option(Format.table, "--format", "-f", help="table or json."),
    library: Path | None = LibraryOpt,
    soft_fail: bool = typer.Option(False, "--soft-fail", help="Exit 0 even with violations."),
) -> None:
    """Scan every resource of the file; exit 1 when a control of the standard fails."""
    try:
        key = standard_or_all(standard)
        lib = _library(library)
        resources = load_resources(path)
        report = Scanner(lib, RegoEvaluator(lib)).scan(resources, key)
    except NovacronError as exc:
        raise _fail(str(exc)) from exc
    if fmt is Format.json:
        typer.echo(orjson.dumps(report.model_dump(), option=orjson.OPT_INDENT_2).decode())
    else:
        _print_report(path, report)
    if report.failed and not soft_fail:
        raise typer.Exit(1)


def _print_report(path: Path, report: ScanReport) -> None:
    console.print(
        f"[bold]{path}[/]: {report.resources} resources, {report.resources_checked} checked"
    )
    summary = Table("standard", "controls", "passed", "failed", "checks", "score")
    for s in report.standards.values():
        summary.add_row(
            s.title, str(s.controls_evaluated), str(s.controls_passed), str(s.controls_failed),
            f"{s.checks_passed}/{s.checks}", _score(s),
        )
    console.print(summary)
    for s in report.standards.values():
        _print_violations(s)
    if report.unchecked_types:
        types = ", ".join(f"{t} ({n})" for t, n in sorted(report.unchecked_types.items()))
        console.print(f"[dim]no controls for: {types}[/]")
    for e in report.errors:
        err.print(f"[red]evaluation error:[/] {e}")


def _score(s: StandardScore) -> str:
    if s.score is None:
        return "n/a"
    color = "green" if s.score >= 90 else "yellow" if s.score >= 70 else "red"
    return f"[{color}]{s.score:.1f}%[/]"


def _print_violations(s: StandardScore) -> None:
    if not s.violations:
        return
    table = Table(title=f"{s.title}: {len(s.violations)} violations", title_justify="left")
    table.add_column("severity", no_wrap=True)
    table.add_column("control", overflow="fold")
    table.add_column("resource", overflow="fold")
    table.add_column("refs", overflow="fold")
    fixes: dict[str, str] = {}
    for v in s.violations:
        color = COLORS.get(v.severity, "")
        refs = ", ".join(r.split(":", 1)[1] for r in v.refs)
        table.add_row(f"[{color}]{v.severity}[/]", v.control_id, v.resource_id, refs)
        fixes.setdefault(v.control_id, v.remediation)
    console.print(table)
    console.print("[bold]remediation[/]")
    for control_id, fix in fixes.items():
        console.print(f"  [bold]{control_id}[/]: {fix}", soft_wrap=True)


@app.command("controls")
def controls(
    standard: str = StandardOpt,
    resource_type: str | None = typer.Option(None, "--type", "-t", help="Only this type."),
    fmt: Format = typer.Option(Format.table, "--format", "-f", help="table or json."),
    library: Path | None = LibraryOpt,
) -> None:
    """List the controls (of a standard / resource type) with their framework references."""
    try:
        key = standard_or_all(standard)
        lib = _library(library)
    except NovacronError as exc:
        raise _fail(str(exc)) from exc
    found = [
        c for c in lib.for_standard(key)
        if resource_type is None or resource_type in c.resource_types
    ]
    if fmt is Format.json:
        rows = [c.model_dump(exclude={"examples"}) for c in found]
        typer.echo(orjson.dumps(rows, option=orjson.OPT_INDENT_2).decode())
        return
    title = STANDARD_TITLES.get(key, "all standards") if key else "all standards"
    table = Table(title=f"{len(found)} controls, {title}", title_justify="left")
    for name in ("id", "severity", "types", "refs", "title"):
        table.add_column(name, overflow="fold")
    for c in found:
        table.add_row(
            c.id, f"[{COLORS.get(c.severity, '')}]{c.severity}[/]", ", ".join(c.resource_types),
            ", ".join(c.refs(key)), c.title,
        )
    console.print(table)
