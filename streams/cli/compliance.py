"""`novacron compliance`: scan plans and states, audit reports, attestations, risk acceptances."""

from __future__ import annotations

import asyncio
import getpass
import json
from datetime import datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any

import orjson
import typer
from rich.console import Console
from rich.table import Table

from policies.compliance import (
    STANDARD_TITLES,
    AttestationStore,
    ControlLibrary,
    RegoEvaluator,
    Scanner,
    ScanReport,
    StandardScore,
    load_library,
    load_scan_input,
    normalise_standard,
    standard_or_all,
)
from policies.compliance.catalogue import load_catalogues
from policies.compliance.report import FrameworkReport, build_report
from schemas.attestations import ATTESTATION_TOPIC, ComplianceAttestation
from schemas.envelope import utc_now
from schemas.errors import NovacronError, RejectedError
from streams.attestations import AttestationLog
from streams.settings import Settings

app = typer.Typer(help="Compliance: scan Terraform plans and states, audit reports per standard, "
                       "attestations of manual controls and risk acceptances.")
console = Console()
err = Console(stderr=True)

COLORS = {"CRITICAL": "bold red", "HIGH": "red", "MEDIUM": "yellow", "LOW": "cyan", "INFO": "dim",
          "fail": "red", "accepted": "yellow", "unknown": "magenta", "pass": "green",
          "not_assessed": "dim"}


class Format(StrEnum):
    table = "table"
    json = "json"


StandardOpt = typer.Option("all", "--standard", "-s",
                           help="cis, pci-dss, hipaa, soc2, gdpr, iso27001, or all.")
LibraryOpt = typer.Option(
    None, "--library", help="Folder with controls/*.yaml and rego/*.rego (default: shipped).")
ParamOpt = typer.Option(
    [], "--param", help="Override a control parameter: CONTROL.NAME=JSON, e.g. "
    "aws-sg-public-ingress-allowlisted.allowed_ports=[443,8443] (the public-port allow-list).")
AttestOpt = typer.Option(
    "none", "--attestations",
    help="Where attestations and risk acceptances come from: kafka (the compacted topic), a "
    "JSON file of records, or none (manual controls are then left out).")
ByOpt = typer.Option(None, "--by", help="Who attests or accepts (default: the login name).")
DaysOpt = typer.Option(None, "--days", min=1, max=1095, help="Counts for this many days.")
ExpiresOpt = typer.Option(None, "--expires", help="Counts until this date (YYYY-MM-DD, UTC).")


def _fail(message: str) -> typer.Exit:
    err.print(f"[red]error:[/] {message}")
    return typer.Exit(2)


def _params(items: list[str]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for item in items:
        name, sep, value = item.partition("=")
        control, dot, param = name.rpartition(".")
        if not sep or not dot:
            raise RejectedError(f"--param {item!r}: expected CONTROL.NAME=JSON")
        try:
            out.setdefault(control, {})[param] = json.loads(value)
        except json.JSONDecodeError as exc:
            raise RejectedError(f"--param {item!r}: the value is not JSON ({exc})") from exc
    return out


def _library(folder: Path | None, params: list[str] | None = None) -> ControlLibrary:
    overrides = _params(params or [])
    if folder is None:
        return load_library(parameters=overrides)
    return load_library(folder / "controls", folder / "rego", overrides)


def _log() -> AttestationLog:
    kafka = Settings().kafka
    return AttestationLog(kafka, kafka.topic(ATTESTATION_TOPIC))


async def _read(log: AttestationLog) -> list[ComplianceAttestation]:
    await log.ensure_topic()  # a topic never written to means: nothing attested yet
    return await log.read_all()


def _records() -> list[ComplianceAttestation]:
    return asyncio.run(_read(_log()))


def _store(source: str) -> AttestationStore | None:
    if source == "none":
        return None
    if source == "kafka":
        return AttestationStore(_records())
    try:
        rows = orjson.loads(Path(source).read_bytes())
        return AttestationStore(ComplianceAttestation.model_validate(r) for r in rows)
    except (OSError, orjson.JSONDecodeError, ValueError, TypeError) as exc:
        raise RejectedError(f"--attestations {source}: not a JSON list of records: {exc}") from exc


def _scan(path: Path, key: str | None, library: Path | None, params: list[str],
          attestations: str) -> tuple[ControlLibrary, ScanReport]:
    lib = _library(library, params)
    scan_input = load_scan_input(path)
    store = _store(attestations)
    return lib, Scanner(lib, RegoEvaluator(lib)).scan(scan_input, key, store)


@app.command("scan")
def scan(
    path: Path = typer.Argument(
        ..., help="`terraform show -json` plan or state, a v4 state file, or a resource list."),
    standard: str = StandardOpt,
    fmt: Format = typer.Option(Format.table, "--format", "-f", help="table or json."),
    library: Path | None = LibraryOpt,
    param: list[str] = ParamOpt,
    attestations: str = AttestOpt,
    soft_fail: bool = typer.Option(False, "--soft-fail", help="Exit 0 even with violations."),
) -> None:
    """Scan every resource of the file; exit 1 when a control of the standard fails on known
    values (values known only after apply are reported as unknown, never as violations)."""
    try:
        _, report = _scan(path, standard_or_all(standard), library, param, attestations)
    except NovacronError as exc:
        raise _fail(str(exc)) from exc
    if fmt is Format.json:
        typer.echo(orjson.dumps(report.model_dump(mode="json"),
                                option=orjson.OPT_INDENT_2).decode())
    else:
        _print_report(path, report)
    if report.failed and not soft_fail:
        raise typer.Exit(1)


def _print_report(path: Path, report: ScanReport) -> None:
    console.print(f"[bold]{path}[/] ({report.source}): {report.resources} resources, "
                  f"{report.resources_checked} checked, sha256 {report.digest[:12]}")
    summary = Table("standard", "controls", "passed", "failed", "unknown", "accepted", "checks",
                    "score")
    for s in report.standards.values():
        summary.add_row(s.title, str(s.controls_evaluated), str(s.controls_passed),
                        str(s.controls_failed), str(s.controls_unknown), str(s.controls_accepted),
                        f"{s.checks_passed}/{s.checks_passed + s.checks_failed}", _score(s))
    console.print(summary)
    for s in report.standards.values():
        _print_findings(s)
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


def _print_findings(s: StandardScore) -> None:
    rows = [*s.violations, *s.accepted, *s.unknown]
    if not rows:
        return
    table = Table(title=f"{s.title}: {len(s.violations)} violations, {len(s.accepted)} accepted,"
                        f" {len(s.unknown)} unknown", title_justify="left")
    for name in ("severity", "status", "control", "resource", "refs"):
        table.add_column(name, overflow="fold")
    fixes: dict[str, str] = {}
    for v in rows:
        refs = ", ".join(r.split(":", 1)[1] for r in v.refs)
        table.add_row(f"[{COLORS.get(v.severity, '')}]{v.severity}[/]",
                      f"[{COLORS.get(v.status, '')}]{v.status}[/]", v.control_id, v.resource_id,
                      refs)
        if v.status in ("fail", "not_attested", "error"):
            fixes.setdefault(v.control_id, v.remediation)
    console.print(table)
    if fixes:
        console.print("[bold]remediation[/]")
    for control_id, fix in fixes.items():
        console.print(f"  [bold]{control_id}[/]: {fix}", soft_wrap=True)


@app.command("report")
def report(
    path: Path = typer.Argument(..., help="`terraform show -json` plan or state to judge."),
    standard: str = typer.Option(..., "--standard", "-s", help="The framework of the report."),
    fmt: Format = typer.Option(Format.table, "--format", "-f", help="table or json."),
    attestations: str = typer.Option("kafka", "--attestations", help=AttestOpt.help),
    library: Path | None = LibraryOpt,
    param: list[str] = ParamOpt,
) -> None:
    """Per requirement of the standard: the controls covering it, their status and evidence
    (resource, attributes, companions, document digest); then the requirements no control
    covers. Manual controls count while attested; accepted risks are listed, not hidden."""
    try:
        key = normalise_standard(standard)
        lib, scanned = _scan(path, key, library, param, attestations)
        doc = build_report(key, scanned, lib, load_catalogues(), utc_now(),
                           "none" if attestations == "none" else attestations)
    except NovacronError as exc:
        raise _fail(str(exc)) from exc
    if fmt is Format.json:
        typer.echo(orjson.dumps(doc.model_dump(mode="json"), option=orjson.OPT_INDENT_2).decode())
        return
    _print_framework(doc)


def _print_framework(doc: FrameworkReport) -> None:
    s = doc.score
    console.print(f"[bold]{doc.title}[/]: score {_score(s)} ({doc.source}, sha256 {doc.digest}, "
                  f"attestations: {doc.attestations})")
    table = Table("requirement", "status", "controls", "evidence", title_justify="left",
                  title=f"{len(doc.requirements)} requirements covered")
    for row in doc.requirements:
        controls = "\n".join(f"[{COLORS[e.status]}]{e.status}[/] {e.control_id}"
                             for e in row.controls)
        evidence = "\n".join(_evidence(f.model_dump()) for e in row.controls for f in e.findings)
        table.add_row(f"{row.catalogue} {row.requirement}\n[dim]{row.title[:70]}[/]",
                      f"[{COLORS[row.status]}]{row.status}[/]", controls, evidence or "-")
    console.print(table)
    console.print(f"[bold]{len(doc.uncovered)} requirements no control covers[/]")
    for u in doc.uncovered:
        console.print(f"  {u['catalogue']} {u['requirement']}: {u['title']}", soft_wrap=True)


def _evidence(v: dict[str, Any]) -> str:
    ev, acc = v.get("evidence") or {}, v.get("acceptance")
    attrs = ",".join(ev.get("attributes", [])[:3])
    text = f"{v['status']}: {v['resource_id']}" + (f" [{attrs}]" if attrs else "")
    if acc:
        text += f" by {acc['by']} until {acc['expires_at'][:10]}"
    return text


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
    found = [c for c in lib.for_standard(key)
             if resource_type is None or resource_type in c.resource_types]
    if fmt is Format.json:
        rows = [c.model_dump(exclude={"examples"}) for c in found]
        typer.echo(orjson.dumps(rows, option=orjson.OPT_INDENT_2).decode())
        return
    title = STANDARD_TITLES.get(key, "all standards") if key else "all standards"
    table = Table(title=f"{len(found)} controls, {title}", title_justify="left")
    for name in ("id", "severity", "types", "refs", "title"):
        table.add_column(name, overflow="fold")
    for c in found:
        table.add_row(c.id, f"[{COLORS.get(c.severity, '')}]{c.severity}[/]",
                      ", ".join(c.resource_types) or "(manual: attested)",
                      ", ".join(c.refs(key)), c.title)
    console.print(table)


def _until(days: int | None, expires: str | None) -> datetime:
    if (days is None) == (expires is None):
        raise RejectedError("give exactly one of --days or --expires (nothing counts for good)")
    if days is not None:
        return utc_now() + timedelta(days=days)
    try:
        return datetime.fromisoformat(f"{expires}T00:00:00+00:00")
    except ValueError as exc:
        raise RejectedError(f"--expires {expires!r}: expected YYYY-MM-DD") from exc


def _publish(record: ComplianceAttestation) -> None:
    log = _log()
    asyncio.run(_ensure_and_publish(log, record))
    console.print(f"recorded {record.kind} {record.key} by {record.by}, counts until "
                  f"{record.expires_at:%Y-%m-%d}" + (" (revoked)" if record.revoked else ""))


async def _ensure_and_publish(log: AttestationLog, record: ComplianceAttestation) -> None:
    await log.ensure_topic()
    await log.publish([record])


@app.command("attest")
def attest(
    control_id: str = typer.Argument(..., help="A manual control (see `controls`)."),
    statement: str = typer.Option(..., "--statement", help="What is attested."),
    evidence: str = typer.Option(..., "--evidence", help="Link to the evidence (https://...)."),
    days: int | None = DaysOpt,
    expires: str | None = ExpiresOpt,
    by: str | None = ByOpt,
) -> None:
    """Attest a manual control (stored on the compacted attestation topic)."""
    try:
        control = load_library().get(control_id)
        if control.kind != "manual":
            raise RejectedError(f"{control_id} is checked automatically; accept its risk instead")
        record = ComplianceAttestation(
            kind="attestation", control_id=control_id, by=by or getpass.getuser(),
            statement=statement, evidence_url=evidence, expires_at=_until(days, expires),
            source="novacron.cli")
        _publish(record)
    except (NovacronError, ValueError) as exc:
        raise _fail(str(exc)) from exc


@app.command("accept")
def accept(
    control_id: str = typer.Argument(..., help="An automated control."),
    resource: str = typer.Option("*", "--resource", help="Resource address, or * for all."),
    reason: str = typer.Option(..., "--reason", help="Why the risk is accepted."),
    evidence: str = typer.Option("", "--evidence", help="Link to the decision (optional)."),
    days: int | None = DaysOpt,
    expires: str | None = ExpiresOpt,
    by: str | None = ByOpt,
) -> None:
    """Accept the risk of a control's violations until a date (shown in reports and scores)."""
    try:
        control = load_library().get(control_id)
        if control.kind != "automated":
            raise RejectedError(f"{control_id} is a manual control: attest it instead")
        _publish(ComplianceAttestation(
            kind="acceptance", control_id=control_id, resource_id=resource,
            by=by or getpass.getuser(), statement=reason, evidence_url=evidence,
            expires_at=_until(days, expires), source="novacron.cli"))
    except (NovacronError, ValueError) as exc:
        raise _fail(str(exc)) from exc


@app.command("revoke")
def revoke(
    kind: str = typer.Argument(..., help="attestation or acceptance."),
    control_id: str = typer.Argument(...),
    resource: str = typer.Option("*", "--resource", help="The acceptance's resource."),
    reason: str = typer.Option("revoked", "--reason"),
    by: str | None = ByOpt,
) -> None:
    """Withdraw an attestation or risk acceptance before it expires."""
    try:
        current = AttestationStore(_records()).latest(
            kind, control_id, resource)
        if current is None:
            raise RejectedError(f"no {kind} recorded for {control_id}/{resource}")
        kept = current.model_dump(exclude={"event_id", "event_time", "source", "correlation_id",
                                           "causation_id", "revoked", "by", "statement"})
        _publish(ComplianceAttestation(**kept, revoked=True, by=by or getpass.getuser(),
                                       statement=reason, source="novacron.cli"))
    except (NovacronError, ValueError) as exc:
        raise _fail(str(exc)) from exc


@app.command("attestations")
def attestations_cmd(
    fmt: Format = typer.Option(Format.table, "--format", "-f", help="table or json (the json "
                               "is a record list that `--attestations FILE` reads back)."),
) -> None:
    """List attestations and risk acceptances, and whether each counts now."""
    try:
        records = AttestationStore(_records()).records()
    except NovacronError as exc:
        raise _fail(str(exc)) from exc
    if fmt is Format.json:
        rows = [r.model_dump(mode="json") for r in records]
        typer.echo(orjson.dumps(rows, option=orjson.OPT_INDENT_2).decode())
        return
    now = utc_now()
    table = Table("kind", "control", "resource", "by", "expires", "counts", "evidence")
    for r in records:
        counts = "yes" if r.active(now) else ("revoked" if r.revoked else "expired")
        table.add_row(r.kind, r.control_id, r.resource_id, r.by, f"{r.expires_at:%Y-%m-%d}",
                      counts, r.evidence_url)
    console.print(table)
