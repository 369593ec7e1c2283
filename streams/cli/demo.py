"""`novacron demo`: local Kafka, every worker role, the simulator, then a report from ClickHouse."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import typer
from rich.console import Console
from rich.progress import Progress

from agents.access import hash_token
from streams.cli import demo_collect
from streams.roles import ROLES, role_index
from streams.settings import Settings

console = Console()
MALFORMED = (b"not json at all", b'{"resource_id": "svc-x", "cpu_usage": 250}', b"[1,2,3]")


def demo(
    ticks: int = typer.Option(240, help="Simulated ticks (one simulated minute each)"),
    tick_seconds: float = typer.Option(0.1, help="Real seconds per tick"),
    services: int = typer.Option(3, help="Simulated services"),
    seed: int = typer.Option(7, help="Simulator seed"),
    roles: str = typer.Option(",".join(ROLES), help="Comma-separated worker roles to run"),
    keep: bool = typer.Option(
        False, "--keep", help="Leave Kafka and the workers running afterwards, to explore."
    ),
) -> None:
    """Run the whole loop for a bounded time, print what landed in ClickHouse, then stop
    everything (or, with --keep, leave it running)."""
    from streams.kafka_local import KafkaLocal

    settings = Settings()
    kafka = KafkaLocal()
    started_kafka = kafka.pid() is None
    workers: list[subprocess.Popen[bytes]] = []
    collector = None
    env = _worker_env(settings)
    done = False
    try:
        with console.status("starting Kafka (first run downloads the jars with Maven)…"):
            kafka.start()
            from streams.topics import create_topics

            asyncio.run(create_topics(settings.kafka))
        wanted = [r.strip() for r in roles.split(",") if r.strip()]
        world = _world(services, seed, ticks)
        repo = _config_repository(settings, world)  # the executor commits, the world follows
        workers = [_start_worker(role, settings, env, repo) for role in wanted]
        _wait_healthy(settings, wanted, workers)
        if "collect" in wanted:  # real telemetry of this machine beside the simulated services
            collector = demo_collect.start(settings, _url(settings, "collect"), console)
        published = _simulate(settings, world, repo, ticks, tick_seconds)
        _wait_landed(settings, published)
        _report(settings, collector)
        _report_commits(repo)
        done = True
    finally:
        if collector is not None and not (keep and done):
            collector.stop()
        if not (keep and done):
            _stop(workers)
            if started_kafka:
                kafka.stop()
    _how_to_query(settings, wanted, workers if keep else [])


def _worker_env(settings: Settings) -> dict[str, str]:
    """The workers' environment: the configured api.tokens plus a viewer token for reading the
    history through /sql (kept in <data_dir>/secrets/sql.token, where the CLI looks for it), and
    an audit signing key so the audit chain is anchored."""
    secrets_dir = settings.data_dir / "secrets"
    token_file = settings.sql_token_file or secrets_dir / "sql.token"
    token = settings.client_sql_token() or _write_secret(token_file, secrets.token_urlsafe(32))
    if not settings.audit.signing_key_file.exists():
        from policies.signing import generate_key

        _write_secret(settings.audit.signing_key_file, generate_key())
    tokens = {h: s.model_dump() for h, s in settings.api.tokens.items()}
    tokens[hash_token(token)] = {"user": "demo", "role": "viewer"}
    return {**os.environ, "NOVACRON_API__TOKENS": json.dumps(tokens)}


def _write_secret(path: os.PathLike[str] | str, value: str) -> str:
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(value + "\n")
    return value


def _start_worker(role: str, settings: Settings, env: dict[str, str], repo: Path
                  ) -> subprocess.Popen[bytes]:
    logs = settings.data_dir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    out = open(logs / f"{role}.log", "ab")  # noqa: SIM115 - the child owns it
    cmd = [sys.executable, "-m", "streams.cli.main", "worker", "--role", role]
    console.print(f"started worker [bold]{role}[/] (log: {logs / f'{role}.log'})")
    env = dict(env)
    defaults = json.loads(env.get("NOVACRON_EXECUTOR__DEFAULTS") or "{}")
    env["NOVACRON_EXECUTOR__DEFAULTS"] = json.dumps({"config_repo": str(repo), **defaults})
    return subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env)


def _world(services: int, seed: int, ticks: int) -> Any:
    from agents.simulator.world import SimConfig, World
    from streams.simulate import replay_start

    config = SimConfig(seed=seed, services=services, drift_probability=0.02,
                       violation_probability=0.01)
    # the run ends now, so every event time is inside the edge's event-time window
    start = replay_start(ticks, config.interval_seconds)
    return World(config.model_copy(update={"start_time": start}))


def _config_repository(settings: Settings, world: Any) -> Path:
    """A fresh config repository for this demo (the simulated cluster's declared state)."""
    from agents.simulator.gitops import seed_repository

    repo = settings.data_dir / "config-repo.git"
    shutil.rmtree(repo, ignore_errors=True)
    seed_repository(world, repo)
    console.print(f"config repository: {repo} (the executor's git steps commit here)")
    return repo


def _url(settings: Settings, role: str) -> str:
    return f"http://{settings.web.host}:{settings.web.port + role_index(role)}"


def _wait_healthy(
    settings: Settings, roles: list[str], procs: list[subprocess.Popen[bytes]]
) -> None:
    with console.status("waiting for the workers…"):
        for role, proc in zip(roles, procs, strict=True):
            deadline = time.monotonic() + 120
            while not _healthy(_url(settings, role)):
                if proc.poll() is not None or time.monotonic() > deadline:
                    log = settings.data_dir / "logs" / f"{role}.log"
                    raise typer.Exit(_fail(f"worker {role} did not start; see {log}"))
                time.sleep(0.5)


def _healthy(url: str) -> bool:
    try:
        return httpx.get(f"{url}/health", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def _fail(message: str) -> int:
    console.print(f"[red]{message}[/]")
    return 1


def _simulate(settings: Settings, world: Any, repo: Path, ticks: int,
              tick_seconds: float) -> int:
    from streams.simulate import SimulatorHost, follow_repository

    gitops = follow_repository(world, repo)
    with Progress(console=console) as progress:
        task = progress.add_task("simulating the cluster", total=ticks)

        def on_tick(stats):  # type: ignore[no-untyped-def]
            progress.update(task, completed=stats.ticks)
            if stats.ticks == ticks // 2:  # something for the optimizer and the DQN to react to
                world.inject_anomaly("svc-0", "load", 3.0, 20)

        stats = asyncio.run(
            SimulatorHost(world, settings, tick_seconds, on_tick=on_tick, gitops=gitops).run(ticks)
        )
    asyncio.run(_send_malformed(settings))
    console.print(
        f"published {stats.metrics} metric samples, {stats.configs} config snapshots and "
        f"{len(MALFORMED)} malformed records; the cluster reconciled {stats.commits} commits "
        f"of the config repository ({stats.reconciled} changes)"
    )
    return stats.metrics


async def _send_malformed(settings: Settings) -> None:
    from streams import kafka_clients

    producer = kafka_clients.producer(settings.kafka)
    await producer.start()
    try:
        for raw in MALFORMED:  # producers are not perfect: these must land in the DLQ
            await producer.send_and_wait(settings.kafka.topic("metrics"), raw, key=b"svc-x")
    finally:
        await producer.stop()


def _wait_landed(settings: Settings, metrics: int) -> None:
    from schemas.errors import BackendUnavailable
    from streams.cli.history import open_history

    query = "SELECT uniqExact(event_id) AS n FROM metric_samples"
    reader = open_history(settings, _url(settings, "ingest"))
    try:
        with console.status("waiting for the history sink to catch up…"):
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                try:
                    if int(reader.query(query)[0]["n"]) >= metrics:
                        break
                except BackendUnavailable:  # /sql answers 503 until its policies are loaded
                    pass
                time.sleep(0.5)
            time.sleep(3)  # let the other roles' last outputs land too
    finally:
        reader.close()


SAMPLES = {
    "metric_samples": "resource_id, cpu_usage, memory_usage, network_latency_ms, active_vms",
    "insights": "resource_id, kind, metric, round(value, 2) AS value, score, confidence",
    "decisions": "resource_id, decision_type, origin, round(confidence, 2) AS conf, reasoning",
    "policy_verdicts": "resource_id, outcome, reasons",
    "actions": "resource_id, action_type, action_id",
    "outcomes": "action_id, scope, step_id, status",
    "drift_findings": "resource_id, severity, round(drift_ratio, 2) AS ratio, changed_fields",
}


def _report(settings: Settings, collector: demo_collect.CollectorDemo | None = None) -> None:
    from streams.cli.history import open_history

    backend, db = open_history(settings, _url(settings, "ingest")), settings.clickhouse.database
    try:
        _summary(backend, db)
        demo_collect.report(backend, db, collector, console)
    finally:
        backend.close()


def _summary(backend: Any, db: str) -> None:
    from sinks.queries import dlq_reasons, table_counts
    from streams.cli.history import rows_table

    counts = table_counts(backend, db)
    console.print(
        rows_table([{"table": t, "rows": n} for t, n in counts.items()], "rows per table")
    )
    console.print(
        rows_table(dlq_reasons(backend, db, 5), f"dead letters: {counts.get('dead_letters', 0)}")
    )
    for table, columns in SAMPLES.items():
        if counts.get(table):
            rows = backend.query(
                f"SELECT {columns} FROM {db}.{table} FINAL "  # noqa: S608 - fixed names above
                "ORDER BY event_time DESC LIMIT 3"
            )
            console.print(rows_table(rows, f"latest {table}"))


_TRY = (
    '  novacron sql "SELECT count() FROM metric_samples"\n'  # noqa: S608 - help text, not SQL
    "  novacron audit report\n  novacron audit verify"
)


def _how_to_query(
    settings: Settings, roles: list[str], running: list[subprocess.Popen[bytes]]
) -> None:
    """The last lines: how to read what the demo wrote, true for what is still running."""
    where = settings.clickhouse.path
    if running:
        pids = " ".join(str(p.pid) for p in running)
        console.print(f"\nThe workers keep running; stop them with: kill {pids}")
    if running and "ingest" in roles:
        token_file = settings.sql_token_file or settings.data_dir / "secrets" / "sql.token"
        console.print(
            f"The ingest worker holds {where}, so the CLI reads through its /sql at "
            f"{_url(settings, 'ingest')} with the viewer token in {token_file} (found there "
            f"automatically):\n{_TRY}"
        )
    else:
        lead = "No ingest worker runs, so" if running else "The workers have stopped;"
        console.print(f"\n{lead} the CLI reads the history in {where} directly:\n{_TRY}")


def _report_commits(repo: Path) -> None:
    from agents.drift.git import SubprocessGit

    out = SubprocessGit().run(["log", "--format=%h%x1f%s%x1f%(trailers:key=NovaCron-Action-Id,"
                               "valueonly,separator=)", "-n", "10"], repo)
    rows = [dict(zip(("commit", "subject", "action_id"), line.split("\x1f"), strict=False))
            for line in out.splitlines() if line.strip()]
    from streams.cli.history import rows_table

    console.print(rows_table(rows, "latest commits of the config repository"))


def _stop(procs: list[subprocess.Popen[bytes]]) -> None:
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    for proc in procs:
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()


app = demo
