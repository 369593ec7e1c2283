"""`novacron drift`: compare config files, manage ignore rules, list open findings."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import typer
import yaml
from rich.console import Console
from rich.table import Table

from agents.drift import DriftConfig, DriftEngine, DriftReport, IgnoreRule, load_ignores
from agents.drift.baseline import parse_baseline_documents
from agents.drift.listing import open_findings
from agents.drift.rules import IgnoreSet
from agents.drift.terraform import detect_format, terraform_resources
from agents.shared import SharedState, ignore_record
from schemas.errors import NonRetryableError, NovacronError
from streams.cli.history import SQL_URL, open_history
from streams.publish import RecordTopic
from streams.settings import Settings

app = typer.Typer(help="Configuration drift: diff files, manage ignore rules, list open findings.")
ignore_app = typer.Typer(help="Ignore rules (per resource type and JSON-pointer pattern).")
app.add_typer(ignore_app, name="ignore")
console = Console()
err = Console(stderr=True)

COLORS = {"CRITICAL": "bold red", "HIGH": "red", "MEDIUM": "yellow", "LOW": "cyan", "INFO": "dim"}
Resources = dict[str, tuple[str, dict[str, Any]]]


def _ignores_topic() -> RecordTopic:
    """The `drift-ignores` compacted topic every govern worker follows (tests swap it)."""
    from streams.publish import KafkaRecordTopic
    from streams.settings import Settings

    return KafkaRecordTopic(Settings(), "drift-ignores")


@contextmanager
def _broker(what: str) -> Iterator[None]:
    """Turn a broker failure into one line that says what to do."""
    from aiokafka.errors import KafkaError

    try:
        yield
    except (KafkaError, OSError, NonRetryableError) as exc:
        raise _fail(f"cannot {what}: {exc}. Is Kafka running (`novacron kafka start`, "
                    "NOVACRON_KAFKA__BOOTSTRAP)?") from exc


def _live_rules(topic: RecordTopic) -> IgnoreSet:
    """The rules the running govern workers apply: the topic folded like they fold it."""
    shared = SharedState()
    with _broker("read the drift-ignores topic"):
        records = topic.read()
    for key, value in records:
        try:
            shared.apply("drift-ignores", key, value)
        except NovacronError as exc:
            err.print(f"[yellow]skipping ignore record {key!r}:[/] {exc}")
    return shared.ignores


def _fail(message: str) -> typer.Exit:
    err.print(f"[red]error:[/] {message}")
    return typer.Exit(2)


def _read(path: Path) -> Any:
    try:
        text = path.read_bytes()
        return orjson.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except OSError as exc:
        raise _fail(f"cannot read {path}: {exc.strerror}") from exc
    except (orjson.JSONDecodeError, yaml.YAMLError) as exc:
        raise _fail(f"{path} is not valid JSON/YAML: {exc}") from exc


def load_resources(path: Path, resource_type: str | None) -> Resources:
    """Resources in a file: Terraform JSON, baseline documents, or one plain config object."""
    doc = _read(path)
    if isinstance(doc, dict) and detect_format(doc) is not None:
        found = {a: (t, v) for a, t, v, deleted in terraform_resources(doc) if not deleted}
    elif isinstance(doc, list) or (
        isinstance(doc, dict)
        and ("baselines" in doc or {"resource_id", "resource_type"} <= doc.keys())
    ):
        found = {r: (t, c) for r, t, c, d in parse_baseline_documents(doc, str(path)) if not d}
    elif isinstance(doc, dict):
        return {path.stem: (resource_type or "generic", doc)}
    else:
        raise _fail(f"{path}: expected a JSON/YAML object")
    return {k: v for k, v in found.items() if resource_type in (None, v[0])}


def _engine(ignore_files: list[Path], default_ignores: bool) -> DriftEngine:
    rules = IgnoreSet()
    for file in ignore_files:
        rules.extend(load_ignores(file))
    return DriftEngine(DriftConfig(default_ignores=default_ignores), rules)


def _short(value: Any, limit: int = 60) -> str:
    text = "∅" if value is None else json.dumps(value, sort_keys=True, default=str)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _print_report(resource_id: str, report: DriftReport) -> None:
    color = COLORS[report.severity]
    title = (
        f"{resource_id} ({report.resource_type}): [{color}]{report.severity}[/] "
        f"{report.drifted_leaves}/{report.total_leaves} fields ({report.ratio:.1%})"
    )
    table = Table(title=title, title_justify="left", show_lines=False)
    for col in ("path", "op", "baseline", "current"):
        table.add_column(col, overflow="fold")
    for c in report.changes:
        mark = " [red]⚠[/]" if c.sensitive else ""
        table.add_row(c.path or "(resource)", c.op + mark, _short(c.old), _short(c.new))
    console.print(table)


def _pair(base: Resources, cur: Resources) -> list[tuple[str, str | None]]:
    # Two single plain configs are compared whatever their file names.
    if len(base) == 1 and len(cur) == 1:
        return [(next(iter(base)), next(iter(cur)))]
    return [(rid, rid if rid in cur else None) for rid in sorted(base)]


@app.command("scan")
def scan(
    baseline: Path = typer.Option(
        ..., "--baseline", "-b", help="Baseline file (JSON/YAML/Terraform)."
    ),
    current: Path = typer.Option(..., "--current", "-c", help="Current config file."),
    resource_type: str | None = typer.Option(
        None, "--resource-type", "-t", help="Type of a plain config, or only this type."
    ),
    ignores: list[Path] = typer.Option([], "--ignores", help="Ignore-rule YAML files."),
    live_ignores: bool = typer.Option(
        False, "--live-ignores", help="Also apply the rules of the drift-ignores topic (what the "
        "running govern workers apply; needs Kafka)."),
    default_ignores: bool = typer.Option(True, help="Apply the built-in computed-field ignores."),
    as_json: bool = typer.Option(False, "--json", help="Print the findings as JSON."),
) -> None:
    """Diff a current config against its baseline; exit 0 when clean, 1 on drift, 2 on error."""
    try:
        base = load_resources(baseline, resource_type)
        cur = load_resources(current, resource_type)
        engine = _engine(ignores, default_ignores)
        if live_ignores:
            engine.ignores.extend(_live_rules(_ignores_topic()))
        reports: dict[str, DriftReport] = {}
        for bid, cid in _pair(base, cur):
            rtype, config = base[bid]
            snap = engine.snapshot(config)
            reports[bid] = (
                engine.deleted(rtype, snap)
                if cid is None
                else engine.compare(rtype, snap, cur[cid][1])
            )
    except NovacronError as exc:
        raise _fail(str(exc)) from exc
    drifted = {rid: r for rid, r in reports.items() if r.drifted}
    unmanaged = sorted(set(cur) - set(base)) if len(base) > 1 or len(cur) > 1 else []
    if as_json:
        console.print_json(data=[_as_json(rid, r) for rid, r in drifted.items()])
    else:
        for rid, report in drifted.items():
            _print_report(rid, report)
        if unmanaged:
            console.print(
                f"[dim]{len(unmanaged)} resources have no baseline: "
                f"{', '.join(unmanaged[:10])}{' …' if len(unmanaged) > 10 else ''}[/]"
            )
        console.print(f"{len(drifted)} of {len(reports)} resources drifted.")
    raise typer.Exit(1 if drifted else 0)


def _as_json(resource_id: str, r: DriftReport) -> dict[str, Any]:
    return {
        "resource_id": resource_id,
        "resource_type": r.resource_type,
        "severity": r.severity,
        "drift_ratio": r.ratio,
        "changed_fields": r.changed_fields,
        "changes": [c.as_dict() for c in r.changes],
        "baseline_hash": r.baseline_hash,
        "current_hash": r.current_hash,
    }


# --- ignore rules ----------------------------------------------------------------------------

_TTL = re.compile(r"^(\d+)([smhdw])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def _expiry(expires: str | None, ttl: str | None) -> datetime | None:
    if expires and ttl:
        raise _fail("give --expires or --ttl, not both")
    if ttl:
        m = _TTL.match(ttl)
        if not m:
            raise _fail(f"--ttl {ttl!r}: use a number and a unit, e.g. 12h, 7d, 2w")
        return datetime.now(UTC) + timedelta(**{_UNITS[m.group(2)]: int(m.group(1))})
    if expires:
        try:
            when = datetime.fromisoformat(expires)
        except ValueError as exc:
            raise _fail(f"--expires {expires!r}: use ISO 8601, e.g. 2026-05-01T00:00:00Z") from exc
        return when if when.tzinfo else when.replace(tzinfo=UTC)
    return None


@ignore_app.command("add")
def ignore_add(
    path: str | None = typer.Argument(
        None, help="JSON-pointer pattern, e.g. /ingress/*/description, /tags/3."
    ),
    resource_type: str = typer.Option("*", "--type", "-t", help="Resource type glob."),
    reason: str | None = typer.Option(None, "--reason", "-r",
                                      help="Why this difference is expected (required)."),
    expires: str | None = typer.Option(None, "--expires", help="Stop applying at (ISO 8601)."),
    ttl: str | None = typer.Option(None, "--ttl", help="Stop applying after e.g. 12h, 7d."),
    by: str = typer.Option("cli", "--by", help="Who adds the rule."),
    file: Path | None = typer.Option(
        None, "--file", help="Publish every rule of this YAML file instead (`ignores:` list)."),
) -> None:
    """Add (or replace) ignore rules on the drift-ignores topic: every govern worker applies
    them within a second, and a restarted one still has them."""
    try:
        rules = _rules_to_add(path, resource_type, reason, _expiry(expires, ttl), by, file)
    except (ValueError, NovacronError) as exc:
        raise _fail(str(exc)) from exc
    topic = _ignores_topic()
    with _broker("publish to the drift-ignores topic"):
        topic.write([ignore_record(r) for r in rules])
    for rule in rules:
        until = f" until {rule.expires_at.isoformat()}" if rule.expires_at else ""
        console.print(f"added {rule.rule_id}: {rule.resource_type} {rule.path}{until}")


def _rules_to_add(path: str | None, resource_type: str, reason: str | None,
                  expires_at: datetime | None, by: str, file: Path | None) -> list[IgnoreRule]:
    if file is not None:
        if path is not None:
            raise ValueError("give a PATH or --file, not both")
        rules = load_ignores(file).rules if file.exists() else []
        if not rules:
            raise ValueError(f"{file}: no ignore rules (expected a YAML list under `ignores:`)")
        return rules
    if path is None or not reason:
        raise ValueError("give a PATH and --reason (or --file with rules)")
    return [IgnoreRule(path=path, resource_type=resource_type, reason=reason,
                       expires_at=expires_at, created_by=by)]


@ignore_app.command("list")
def ignore_list(as_json: bool = typer.Option(False, "--json", help="Print rules as JSON.")
                ) -> None:
    """Show the ignore rules of the drift-ignores topic (expired ones marked)."""
    rules = _live_rules(_ignores_topic()).rules
    if as_json:
        console.print_json(data=[r.model_dump(mode="json") | {"id": r.rule_id} for r in rules])
        return
    now = datetime.now(UTC)
    table = Table(title=f"{len(rules)} ignore rules (drift-ignores topic)", title_justify="left")
    for col in ("id", "type", "path", "reason", "expires", "by"):
        table.add_column(col)
    for r in rules:
        exp = r.expires_at.isoformat() if r.expires_at else "never"
        table.add_row(r.rule_id, r.resource_type, r.path, r.reason,
                      exp if r.active(now) else f"[dim]{exp} (expired)[/]", r.created_by)
    console.print(table)


@ignore_app.command("remove")
def ignore_remove(
    rule_id: str = typer.Argument(
        ..., help="Rule id (or a unique prefix) from `drift ignore list`."
    ),
) -> None:
    """Remove an ignore rule (a tombstone on the drift-ignores topic)."""
    topic = _ignores_topic()
    try:
        removed = _live_rules(topic).remove(rule_id)
    except NovacronError as exc:
        raise _fail(str(exc)) from exc
    with _broker("publish to the drift-ignores topic"):
        topic.write([(removed.rule_id.encode(), None)])
    console.print(f"removed {removed.rule_id}: {removed.resource_type} {removed.path}")


# --- open findings ---------------------------------------------------------------------------


@app.command("list")
def list_cmd(
    sql_url: str | None = SQL_URL,
    severity: list[str] = typer.Option([], "--severity", "-s", help="Only these severities."),
    resource_type: str | None = typer.Option(None, "--type", "-t", help="Only this type."),
    since_days: int = typer.Option(30, "--since-days", help="Look back this many days."),
    limit: int = typer.Option(100, "--limit", help="At most this many findings."),
    table: str = typer.Option(
        "novacron.drift_findings", "--table", help="History table of DriftFinding events."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print rows as JSON."),
) -> None:
    """Open drift findings from ClickHouse (the latest finding per resource, still open)."""
    reader = open_history(Settings(), sql_url)
    try:
        rows = open_findings(
            reader.query,
            table=table,
            severities=[s.upper() for s in severity],
            resource_type=resource_type,
            since_days=since_days,
            limit=limit,
        )
    except NovacronError as exc:
        raise _fail(str(exc)) from exc
    finally:
        reader.close()
    if as_json:
        console.print_json(data=rows)
        return
    out = Table(title=f"{len(rows)} open drift findings", title_justify="left")
    for col in ("time", "resource", "type", "severity", "drift", "fields", "baseline"):
        out.add_column(col, overflow="fold")
    for r in rows:
        fields = r.get("changed_fields") or []
        sev = str(r.get("severity", ""))
        out.add_row(
            str(r.get("event_time", "")),
            str(r.get("resource_id", "")),
            str(r.get("resource_type", "")),
            f"[{COLORS.get(sev, '')}]{sev}[/]",
            f"{float(r.get('drift_ratio') or 0):.0%}",
            ", ".join(fields[:3]) + (" …" if len(fields) > 3 else ""),
            str(r.get("baseline_revision") or ""),
        )
    console.print(out)
