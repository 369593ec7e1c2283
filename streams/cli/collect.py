"""`novacron collect`: pull-based collectors run from the command line (Terraform, ArgoCD)."""

from __future__ import annotations

import re
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from schemas import ConfigChange, Event
from streams.settings import Settings

app = typer.Typer(help="Collectors that poll a source: Terraform refresh-only plans, ArgoCD "
                  "application status.", no_args_is_help=True)
console = Console(stderr=True)
OutOpt = typer.Option(None, "--out", "-o", help="Write the events as JSON lines to this file "
                      "('-' = stdout) instead of publishing them.")
EveryOpt = typer.Option(None, "--every", help="Repeat every DURATION (30s, 5m, 1h) until "
                        "interrupted; default: once.")
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)(s|m|h)$")


def parse_every(text: str | None) -> float | None:
    """Seconds of `30s`, `5m`, `1h`; None for none; BadParameter otherwise."""
    if text is None:
        return None
    match = _DURATION.match(text.strip())
    if match is None or float(match.group(1)) <= 0:
        raise typer.BadParameter(f"{text!r}: write a duration like 30s, 5m or 1h")
    return float(match.group(1)) * {"s": 1, "m": 60, "h": 3600}[match.group(2)]


def _emit(events: Sequence[Event], out: Path | None) -> None:
    if out is not None:
        lines = b"".join(e.model_dump_json().encode() + b"\n" for e in events)
        if str(out) == "-":
            sys.stdout.buffer.write(lines)
            sys.stdout.flush()
        else:
            with out.open("ab") as f:
                f.write(lines)
        return
    from streams.publish import publish  # imports aiokafka: only when publishing

    try:
        publish(events)
    except Exception as exc:  # aiokafka raises several unrelated types when no broker answers
        console.print(f"[red]could not publish to Kafka ({exc}); start it with `novacron kafka "
                      "start`, or write the events with --out FILE[/]")
        raise typer.Exit(2) from exc


def _repeat(every: float | None, once: Callable[[], bool]) -> None:
    """Run `once` (False: it failed); with --every keep going after failures, else exit 1."""
    while True:
        ok = once()
        if every is None:
            raise typer.Exit(0 if ok else 1)
        time.sleep(every)


def _changed_keys(change: ConfigChange) -> str:
    before, after = change.before or {}, change.config
    keys = sorted(k for k in {*before, *after} if before.get(k) != after.get(k))
    return ", ".join(keys[:8]) + (" …" if len(keys) > 8 else "")


@app.command("terraform")
def terraform_cmd(
    folder: Path = typer.Option(..., "--dir", "-d", help="A Terraform working directory "
                                "(initialised, with its state)."),
    every: str | None = EveryOpt,
    binary: Path | None = typer.Option(None, "--terraform", help="The Terraform CLI (default: "
                                       "settings terraform_bin)."),
    actor: str = typer.Option("terraform-refresh", help="Actor recorded on the changes."),
    out: Path | None = OutOpt,
) -> None:
    """Run `terraform plan -refresh-only` and publish a ConfigChange (with before/after) for
    every resource whose real attributes changed outside Terraform. Terraform's errors are
    printed and make the exit code 1."""
    from streams.collect_terraform import TerraformError, refresh

    terraform = binary or Settings().terraform_bin
    seen: set[str] = set()

    def once() -> bool:
        try:
            result = refresh(folder, terraform, actor=actor)
        except TerraformError as exc:
            console.print(f"[red]{exc}[/]")
            return False
        for warning in result.warnings:
            console.print(f"[yellow]{warning.splitlines()[0]}[/]")
        new = [c for c in result.changes if c.event_id not in seen]
        _report(result.changes, len(new))
        if new:
            _emit(new, out)
            seen.update(c.event_id for c in new)
        return True

    _repeat(parse_every(every), once)


def _report(changes: Sequence[ConfigChange], new: int) -> None:
    if not changes:
        console.print("no changes outside Terraform")
        return
    table = Table("resource", "op", "changed", title=f"{len(changes)} resources changed outside "
                  f"Terraform ({new} new)", title_justify="left")
    for c in changes:
        table.add_row(c.resource_id, c.op, _changed_keys(c))
    console.print(table)


def _argocd_apps(server: str, token: str, apps: Sequence[str]) -> list[dict[str, object]]:
    """The Application objects (named ones, or every one the token may see)."""
    from urllib.parse import quote

    import httpx

    base = f"{server.rstrip('/')}/api/v1/applications"
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
    with httpx.Client(timeout=30, headers=headers) as http:
        if not apps:
            resp = http.get(base)
            resp.raise_for_status()
            return list(resp.json().get("items") or [])
        found = []
        for name in apps:
            resp = http.get(f"{base}/{quote(name, safe='')}")
            resp.raise_for_status()
            found.append(resp.json())
        return found


@app.command("argocd")
def argocd_cmd(
    server: str = typer.Option(..., "--server", help="ArgoCD API base URL (https://argocd…)."),
    apps: list[str] = typer.Option([], "--app", help="Application name (repeat); default: all."),
    every: str | None = EveryOpt,
    cluster: str = typer.Option("default", help="`cluster` of the samples."),
    token_file: Path | None = typer.Option(None, "--token-file", help="File holding the ArgoCD "
                                           "token (default: the ARGOCD_TOKEN variable)."),
    out: Path | None = OutOpt,
) -> None:
    """Poll ArgoCD applications' sync and health status into `metrics` (one MetricSample per
    application: labels sync_status/health_status/revision, extra synced/healthy/history_id);
    the deploy watch reads a new history_id as a deploy."""
    import os

    import httpx

    from agents.collectors.argocd import app_sample

    token = token_file.read_text().strip() if token_file else os.environ.get("ARGOCD_TOKEN", "")
    if not token:
        raise typer.BadParameter("no ArgoCD token: set ARGOCD_TOKEN or --token-file")

    def once() -> bool:
        try:
            found = _argocd_apps(server, token, apps)
        except (httpx.HTTPError, ValueError) as exc:
            console.print(f"[red]ArgoCD at {server}: {exc}[/]")
            return False
        samples = [app_sample(a, cluster) for a in found]
        for s in samples:
            console.print(f"{s.resource_id}: {s.labels['sync_status']}/"
                          f"{s.labels['health_status']} at {s.labels['revision'][:12]}")
        if samples:
            _emit(samples, out)
        return True

    _repeat(parse_every(every), once)
