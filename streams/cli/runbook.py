"""`novacron runbook validate|run|list`: check, run and list YAML runbooks."""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from runbooks.engine import Engine, WorkflowResult
from runbooks.interpolate import EnvSecrets, references
from runbooks.journal import FileJournal, InMemoryJournal
from runbooks.loader import LIBRARY_DIR, Library, load_file
from runbooks.model import Runbook, ValidationError
from runbooks.params import IDENTITY
from runbooks.resolve import RefusedAction, check_overrides
from runbooks.runtime import EngineConfig
from schemas import Action, Event, Outcome

app = typer.Typer(help="Runbooks: validate, run and list the YAML workflows.", no_args_is_help=True)
console = Console()
err = Console(stderr=True)

VarOpt = typer.Option(
    [], "--var", "-v", help="Variable as NAME=VALUE (VALUE parsed as JSON if it can be)."
)
DirOpt = typer.Option([], "--dir", "-d", help="Extra runbook folder (after the built-in library).")
_TERMINAL = {"succeeded", "failed", "timed_out", "skipped", "compensated"}
_OK = ("succeeded", "skipped")
_COLOUR = {"succeeded": "green", "skipped": "green", "succeeded_with_failures": "yellow"}


def _say(out: Console, text: str, style: str = "", head: str = "") -> None:
    """Print text exactly: runbook and event values are never read as markup (`[/bold]`) or
    emoji codes (`:x:`); only `head` is styled."""
    out.print(Text.assemble((head, style), text) if head else Text(text, style=style))


def _vars(pairs: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise typer.BadParameter(f"--var wants NAME=VALUE, got {pair!r}")
        try:
            out[name] = json.loads(value)
        except json.JSONDecodeError:
            out[name] = value
    return out


def _typed(runbook: Runbook, variables: dict[str, Any]) -> dict[str, Any]:
    """`--var`s checked against the declared parameter types (an operator may set any)."""
    try:
        return {**variables, **check_overrides(runbook, variables, "operator")}
    except RefusedAction as exc:
        _say(err, str(exc), "red")
        raise typer.Exit(2) from None


def _library(dirs: list[Path]) -> Library:
    try:
        return Library([LIBRARY_DIR, *dirs])
    except ValidationError as exc:  # a folder holds a file that is not a valid runbook
        _problems(exc)
    except OSError as exc:
        _say(err, f"cannot read the runbook folders: {exc.strerror or type(exc).__name__}", "red")
    raise typer.Exit(2)


def _load(target: str, dirs: list[Path]) -> tuple[Runbook, Library]:
    lib = _library(dirs)
    path = Path(target)
    try:
        if path.suffix in (".yaml", ".yml") or path.exists():
            return load_file(path), lib
        return lib.get(target), lib
    except KeyError as exc:
        _say(err, str(exc.args[0]), "red")
    except ValidationError as exc:
        _problems(exc)
    except OSError as exc:  # only the path and the reason
        _say(err, f"cannot read {target}: {exc.strerror or type(exc).__name__}", "red")
    raise typer.Exit(2)


def _problems(exc: ValidationError) -> None:
    _say(err, f"invalid runbook ({len(exc.problems)} problem(s)):", "red")
    for problem in exc.problems:
        _say(err, f"  • {problem}")


@app.command("list")
def list_(dirs: list[Path] = DirOpt) -> None:
    """List the runbooks in the library (and extra folders)."""
    lib = _library(dirs)
    table = Table("id", "name", "implements", "selectable", "event parameters", "steps")
    for rid in lib.ids():
        rb = lib.get(rid)
        events = [n for n, p in rb.parameters.items() if p.overridable]
        cells = [rid, rb.metadata.name, ", ".join(rb.metadata.implements) or "-",
                 "yes" if rb.metadata.selectable else "no", ", ".join(events) or "-",
                 str(len(rb.steps))]
        table.add_row(*(Text(c) for c in cells))
    console.print(table)


@app.command()
def validate(
    target: str = typer.Argument(..., help="A runbook file or a library id."),
    var: list[str] = VarOpt,
    strict: bool = typer.Option(False, help="Also fail on variables and secrets not given/set."),
    dirs: list[Path] = DirOpt,
) -> None:
    """Check a runbook: size and aliases, schema, parameters, DAG (unknown deps, cycles), step
    types, variables, executables, and variables passed to an interpreter as code (`sh -c`)."""
    runbook, lib = _load(target, dirs)
    engine = Engine(EngineConfig(default_webhook_url="http://placeholder"), resolve=lib.get)
    try:
        engine.validate(runbook, _typed(runbook, _vars(var)))
    except ValidationError as exc:
        wanted = (
            exc.problems
            if strict
            else [p for p in exc.problems if "missing variable" not in p and "is not set" not in p]
        )
        if wanted:
            _problems(ValidationError(wanted))
            raise typer.Exit(1) from None
    given = {n for n, p in runbook.declared.items() if p.default is not None or p.nullable}
    needs = sorted(references([s.model_dump() for s in runbook.steps]) - given - IDENTITY)
    _say(console, f" {runbook.id}: {len(runbook.steps)} steps", "green", head="ok")
    if needs:
        _say(console, "needs: " + ", ".join("${" + n + "}" for n in needs))


@app.command()
def run(
    target: str = typer.Argument(..., help="A runbook file or a library id."),
    var: list[str] = VarOpt,
    dry_run: bool = typer.Option(
        False, "--dry-run", help="Plan only: show each step, run nothing."
    ),
    journal: Path | None = typer.Option(
        None, help="JSONL journal: re-running the same --action-id resumes or skips."
    ),
    action_id: str | None = typer.Option(None, help="Idempotency key (default: a new UUID)."),
    webhook: str | None = typer.Option(None, help="Default webhook of notification steps."),
    secrets_dir: Path | None = typer.Option(None, help="Folder of secret files (${secret:NAME})."),
    allow: list[str] = typer.Option([], help="Allow-list of executables for command steps."),
    dirs: list[Path] = DirOpt,
) -> None:
    """Run a runbook now, in this process, with live progress. Exit 0: succeeded or skipped;
    1: succeeded_with_failures (a non-critical step did not succeed), failed or compensated;
    2: the runbook cannot be loaded or validated."""
    runbook, lib = _load(target, dirs)
    config = EngineConfig(default_webhook_url=webhook, allowed_executables=allow or None)
    variables = _typed(runbook, _vars(var))
    result = asyncio.run(
        _run(runbook, lib, variables, config, journal, action_id, dry_run, secrets_dir)
    )
    colour = _COLOUR.get(result.status, "red")
    _say(console, f" {runbook.id} action {result.action_id}", colour, head=result.status)
    if result.error:
        _say(console, f"  {result.error}")
    raise typer.Exit(0 if result.status in _OK else 1)


async def _run(
    runbook: Runbook,
    lib: Library,
    variables: dict[str, Any],
    config: EngineConfig,
    journal_path: Path | None,
    action_id: str | None,
    dry_run: bool,
    secrets_dir: Path | None,
) -> WorkflowResult:
    journal = FileJournal(journal_path) if journal_path else InMemoryJournal()
    aid = action_id or str(uuid.uuid4())
    resource = str(variables.get("resource_id") or runbook.id)
    variables = {
        "resource_id": resource,
        "action_id": aid,
        "action_type": "run_runbook",
        **variables,
    }
    action = Action(
        action_id=aid,
        resource_id=resource,
        action_type="run_runbook",
        runbook=runbook.id,
        source="novacron.cli",
        dry_run=dry_run,
    )
    with Progress(
        TextColumn("{task.description}", markup=False),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        console=console,
    ) as progress:
        task = progress.add_task(runbook.id, total=len(runbook.steps))

        def emit(event: Event) -> None:
            if not isinstance(event, Outcome):
                return
            where = event.step_id or "workflow"
            line = f"{where:>16} {event.status}" + (
                f" (attempt {event.attempt})" if event.attempt > 1 else ""
            )
            _say(progress.console, line + (f": {event.error}" if event.error else ""))
            if (
                event.scope == "step"
                and event.status in _TERMINAL
                and event.status != "compensated"
            ):
                progress.advance(task)

        engine = Engine(
            config, emit=emit, journal=journal, secrets=EnvSecrets(secrets_dir), resolve=lib.get
        )
        try:
            return await engine.run(
                runbook, variables, parent=action, action_id=aid, dry_run=dry_run
            )
        except ValidationError as exc:
            _problems(exc)
            raise typer.Exit(2) from None
        finally:
            await engine.aclose()
