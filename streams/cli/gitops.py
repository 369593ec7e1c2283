"""`novacron gitops`: what a config repository has applied, what changed since, and checks."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from agents.gitops import FOLDERS, GitopsReconciler, RegoChecks
from agents.gitops.objects import live_digests, out_of_band
from agents.shared import SharedState
from schemas import GitSync
from schemas.envelope import utc_now
from schemas.errors import NovacronError
from schemas.gitops import GitCommit
from streams.settings import Settings

app = typer.Typer(help="GitOps: the config repository that drives policies, runbooks, baselines, "
                  "ignore rules and compliance exceptions.", no_args_is_help=True)
console = Console()
err = Console(stderr=True)
LIVE_TOPICS = ("gitops", "policies", "runbooks", "desired", "drift-ignores",
               "compliance-attestations")
_SUFFIXES = (".rego", ".sig", ".yaml", ".yml", ".json")


def _fold(settings: Settings) -> SharedState:
    from streams.reader import read_to_end

    shared = SharedState()
    shared.policies.config = settings.policies

    async def read() -> None:
        for logical in LIVE_TOPICS:
            for r in await read_to_end(settings.kafka, settings.kafka.topic(logical)):
                try:
                    shared.apply(logical, r.key, r.value)
                except NovacronError as exc:
                    err.print(f"[yellow]skipping {logical} record @{r.offset}: {exc}[/]")

    try:
        asyncio.run(asyncio.wait_for(read(), 60))
    except Exception as exc:  # aiokafka raises several types when no broker answers
        err.print(f"[red]cannot read the topics ({exc}); is Kafka up (`novacron kafka start`) "
                  "and were the topics created (`novacron topics create`)?[/]")
        raise typer.Exit(2) from exc
    return shared


def _branch_head(settings: Settings) -> str | None:
    from streams.gitops_git import run_git

    cfg = settings.gitops
    if not cfg.url:
        return None
    try:
        out = run_git(["ls-remote", "--", cfg.url, f"refs/heads/{cfg.branch}"],
                      cfg.git_timeout_seconds).decode()
    except NovacronError as exc:
        err.print(f"[yellow]cannot read the branch head: {exc}[/]")
        return None
    return out.split()[0] if out.strip() else None


def status_report(sync: GitSync | None, head: str | None, shared: SharedState) -> dict[str, Any]:
    """The synced commit against the branch head, and objects changed out of band since."""
    if sync is None:
        return {"synced": None, "head": head, "in_sync": False, "out_of_band": {}}
    live = live_digests(shared, utc_now())
    return {"repo": sync.repo, "branch": sync.branch, "synced": sync.serving, "head": head,
            "in_sync": head is not None and head == sync.serving,
            "last_sync": {"commit": sync.commit, "status": sync.status, "author": sync.author,
                          "message": sync.message, "at": sync.event_time.isoformat(),
                          "reasons": sync.reasons},
            "objects": len(sync.manifest), "out_of_band": out_of_band(sync.manifest, live)}


@app.command()
def status(
    repo: str | None = typer.Option(None, help="Repository name (default: gitops.repo)."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
) -> None:
    """Show the synced commit against the branch head, and any object changed out of band since
    (through the API or CLI). Exit code 1 when behind, rejected or changed out of band."""
    settings = Settings()
    name = repo or settings.gitops.repo
    shared = _fold(settings)
    report = status_report(shared.gitsync.get(name), _branch_head(settings), shared)
    if as_json:
        console.print_json(json.dumps(report))
    else:
        _print(name, report)
    healthy = report["in_sync"] and not report["out_of_band"] and \
        report.get("last_sync", {}).get("status") == "applied"
    raise typer.Exit(0 if healthy else 1)


def _print(name: str, report: dict[str, Any]) -> None:
    if report["synced"] is None:
        console.print(f"repository {name}: never synced (head {report['head'] or 'unknown'})")
        return
    last = report["last_sync"]
    mark = "[green]in sync[/]" if report["in_sync"] else "[yellow]behind the branch head[/]"
    console.print(f"repository {name} ({report['branch']}): synced {report['synced'][:12]}, "
                  f"head {(report['head'] or 'unknown')[:12]} — {mark}")
    console.print(f"last sync: {last['status']} {last['commit'][:12]} by {last['author']} "
                  f"at {last['at']}: {last['message']}")
    for reason in last["reasons"]:
        console.print(f"  [red]•[/] {reason}")
    if not report["out_of_band"]:
        console.print(f"{report['objects']} objects, none changed out of band")
        return
    table = Table("object", "since the sync", title=f"{len(report['out_of_band'])} of "
                  f"{report['objects']} objects changed out of band", title_justify="left")
    for ref, state in report["out_of_band"].items():
        table.add_row(ref, state)
    console.print(table)


def read_folder(root: Path, max_bytes: int = 1_048_576) -> tuple[dict[str, str], list[str]]:
    """The config files of a local checkout (same rules as the reconciler's reading)."""
    files, problems = {}, []
    for folder in FOLDERS:
        for path in sorted((root / folder).rglob("*")) if (root / folder).is_dir() else []:
            rel = path.relative_to(root).as_posix()
            if not rel.endswith(_SUFFIXES) or path.is_dir():
                continue
            if path.is_symlink() or path.stat().st_size > max_bytes:
                problems.append(f"{rel}: a symlink or larger than {max_bytes} bytes")
                continue
            try:
                files[rel] = path.read_text(encoding="utf-8")
            except UnicodeDecodeError:
                problems.append(f"{rel}: not UTF-8 text")
    return files, problems


@app.command()
def validate(folder: Path = typer.Argument(Path("."), help="A checkout of the config repo.")
             ) -> None:
    """Run the reconciler's checks on a local checkout (for the config repo's own CI): Rego
    tests and compilation, runbooks, baselines, ignores, exceptions, signatures."""
    settings = Settings()
    files, problems = read_folder(folder)
    modules = {p: t for p, t in files.items() if p.endswith(".rego") and "_test" not in p}
    tests = {p: t for p, t in files.items() if p.endswith("_test.rego")}
    problems += RegoChecks().check(modules, tests)
    shared = SharedState()
    shared.policies.config = settings.policies
    from streams.wiring import AgentContext, rows_of

    row = next(r for r in rows_of("govern") if r.name == "gitops")
    agent = row.make(AgentContext(settings, shared, "govern"))
    assert isinstance(agent, GitopsReconciler)
    commit = GitCommit(repo=agent.config.repo, commit="0" * 40, files=files, problems=problems)
    rejected = agent.handle(commit)
    if rejected:
        assert isinstance(rejected[0], GitSync)
        err.print(f"[red]{len(rejected[0].reasons)} problem(s):[/]")
        for reason in rejected[0].reasons:
            err.print(f"  • {reason}")
        raise typer.Exit(1)
    [plan] = agent.take_plans()
    assert plan.sync is not None
    console.print(f"[green]ok[/]: {len(plan.sync.manifest)} objects "
                  f"({', '.join(sorted({r.split('/')[0] for r in plan.sync.manifest}))})")
