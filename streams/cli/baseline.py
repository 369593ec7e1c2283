"""`novacron baseline`: declare, accept, git sync and Terraform import into the `desired` topic."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson
import typer
import yaml
from rich.console import Console
from rich.table import Table

from agents.drift import desired_state, load_terraform, sync_git
from schemas import DesiredState
from schemas.errors import NovacronError

app = typer.Typer(help="Baselines (declared configs) in the compacted `desired` topic.")
console = Console(stderr=True)

OutOpt = typer.Option(
    None,
    "--out",
    "-o",
    help="Write the events as JSON lines to this file ('-' = stdout) instead of publishing.",
)
AuthorOpt = typer.Option("cli", "--author", help="Who declares the baseline.")


def _fail(message: str) -> typer.Exit:
    console.print(f"[red]error:[/] {message}")
    return typer.Exit(2)


def _config(path: Path) -> dict[str, Any]:
    try:
        raw = path.read_bytes()
        data = orjson.loads(raw) if path.suffix == ".json" else yaml.safe_load(raw)
    except OSError as exc:
        raise _fail(f"cannot read {path}: {exc.strerror}") from exc
    except (orjson.JSONDecodeError, yaml.YAMLError) as exc:
        raise _fail(f"{path} is not valid JSON/YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise _fail(f"{path}: the config must be a JSON/YAML object")
    return data


def write_jsonl(events: Sequence[DesiredState], out: Path) -> None:
    """One JSON event per line, the wire JSON of `schemas.codec`."""
    lines = b"".join(e.model_dump_json().encode() + b"\n" for e in events)
    if str(out) == "-":
        sys.stdout.buffer.write(lines)
        sys.stdout.flush()
    else:
        out.write_bytes(lines)


def _emit(events: Sequence[DesiredState], out: Path | None) -> None:
    table = Table(title=f"{len(events)} baselines", title_justify="left")
    for col in ("resource", "type", "origin", "revision", "deleted"):
        table.add_column(col, overflow="fold")
    for e in events[:50]:
        table.add_row(
            e.resource_id, e.resource_type, e.origin, e.revision or "", "yes" if e.deleted else ""
        )
    console.print(table)
    if out is not None:
        write_jsonl(events, out)
        console.print(f"wrote {len(events)} events to {out}")
        return
    from streams.publish import publish  # imports aiokafka: only when publishing

    try:
        sent = publish(events)
    except Exception as exc:  # aiokafka raises several unrelated types when no broker answers
        raise _fail(
            f"could not publish to Kafka ({exc}); start it with `novacron kafka start` "
            "or write the events with --out FILE"
        ) from exc
    console.print(f"published {sent} baselines to the `desired` topic")


@app.command("set")
def set_cmd(
    resource_id: str = typer.Argument(..., help="Resource id (e.g. a Terraform address)."),
    resource_type: str = typer.Option(..., "--type", "-t", help="Terraform-style resource type."),
    config: Path = typer.Option(..., "--config", "-c", help="JSON/YAML file with the config."),
    revision: str | None = typer.Option(None, "--revision", help="Revision to record."),
    author: str = AuthorOpt,
    out: Path | None = OutOpt,
) -> None:
    """Declare the baseline of one resource."""
    event = desired_state(
        resource_id, resource_type, _config(config), origin="api", revision=revision, author=author
    )
    _emit([event], out)


@app.command("accept")
def accept_cmd(
    resource_id: str = typer.Argument(..., help="The drifted resource."),
    resource_type: str = typer.Option(..., "--type", "-t", help="Terraform-style resource type."),
    config: Path = typer.Option(..., "--config", "-c", help="The current config to accept."),
    finding: str | None = typer.Option(None, "--finding", help="Id of the finding accepted."),
    author: str = AuthorOpt,
    out: Path | None = OutOpt,
) -> None:
    """Accept a drift: the current config becomes the new baseline (origin accepted-drift)."""
    revision = f"accepted:{finding}" if finding else "accepted"
    event = desired_state(
        resource_id,
        resource_type,
        _config(config),
        origin="accepted-drift",
        revision=revision[:128],
        author=author,
    )
    _emit([event], out)


@app.command("sync")
def sync_cmd(
    git: str = typer.Option(
        ..., "--git", help="Repository path or URL holding YAML/JSON baselines."
    ),
    rev: str | None = typer.Option(None, "--rev", help="Commit, tag or branch (default: HEAD)."),
    subdir: str = typer.Option("", "--subdir", help="Folder of the baselines inside the repo."),
    author: str = typer.Option("gitops", "--author", help="Author recorded on the baselines."),
    out: Path | None = OutOpt,
) -> None:
    """Publish every baseline of a git repository at a revision (the commit is recorded)."""
    try:
        with console.status(f"cloning {git} …"):
            result = sync_git(git, rev, subdir=subdir, author=author)
    except NovacronError as exc:
        raise _fail(str(exc)) from exc
    console.print(f"read {len(result.events)} baselines at commit {result.commit}")
    _emit(result.events, out)


@app.command("import-tfstate")
def import_tfstate(
    file: Path = typer.Argument(
        ..., help="terraform.tfstate (v4) or `terraform show -json` output."
    ),
    revision: str | None = typer.Option(None, "--revision", help="Override the recorded revision."),
    author: str = typer.Option("terraform", "--author", help="Author recorded on the baselines."),
    out: Path | None = OutOpt,
) -> None:
    """Import Terraform state or plan JSON as baselines, keyed by resource address."""
    try:
        events = load_terraform(file, author=author, revision=revision)
    except NovacronError as exc:
        raise _fail(str(exc)) from exc
    _emit(events, out)
