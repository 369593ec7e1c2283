"""`novacron simulate`: run the simulated cluster against Kafka."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import Progress

from streams.settings import Settings

console = Console(stderr=True)


def simulate(
    ticks: int = typer.Option(600, help="Ticks to run (0 = until Ctrl-C)"),
    services: int = typer.Option(3, help="Number of services"),
    seed: int = typer.Option(7, help="Seed: the same seed gives the same world"),
    tick_seconds: float = typer.Option(0.2, help="Real seconds per tick (accelerated clock)"),
    interval: float = typer.Option(60.0, help="Simulated seconds per tick"),
    trace: str = typer.Option("synthetic", help="'synthetic' or a CSV trace (NAB format)"),
    start: str = typer.Option(
        "auto",
        help="Simulated start time (ISO 8601), 'now', or 'auto': end the run now (the edge "
        "dead-letters event times more than edge.max_future_seconds ahead of the clock)",
    ),
    fmt: str = typer.Option("json", "--format", help="Wire format: json or avro"),
    anomaly: str | None = typer.Option(
        None, help="Inject an anomaly: SERVICE:KIND:MAGNITUDE:AT_TICK:TICKS (kind load|cost)"
    ),
    config_repo: Path | None = typer.Option(
        None, help="Bare git repository the cluster reconciles from, as ArgoCD would (created "
        "from the world if missing; default <data_dir>/config-repo.git). Give the execute "
        "role the same path as executor.defaults.config_repo"),
) -> None:
    """Publish metrics and config events of a simulated cluster that reconciles from a git
    config repository; the executor's git steps change that repository."""
    from agents.simulator.world import SimConfig, World
    from streams.simulate import SimulatorHost, follow_repository, replay_start

    if start == "auto":
        begin = replay_start(ticks, interval)
    elif start == "now":
        begin = datetime.now(UTC).replace(second=0, microsecond=0)
    else:
        begin = datetime.fromisoformat(start)
    world = World(
        SimConfig(
            seed=seed, services=services, interval_seconds=interval, trace=trace, start_time=begin
        )
    )
    with Progress(console=console) as progress:
        task = progress.add_task("simulating", total=ticks or None)
        inject = _parse_anomaly(anomaly)

        def on_tick(stats):  # type: ignore[no-untyped-def]
            progress.update(task, completed=stats.ticks)
            if inject and stats.ticks == inject[3]:
                world.inject_anomaly(inject[0], inject[1], inject[2], inject[4])

        settings = Settings()
        repo = config_repo or settings.data_dir / "config-repo.git"
        gitops = follow_repository(world, repo)
        console.print(f"the cluster follows {repo} (services/*.yaml, resources/**.yaml)")
        host = SimulatorHost(world, settings, tick_seconds, fmt, on_tick,  # type: ignore[arg-type]
                             gitops=gitops)
        stats = asyncio.run(host.run(ticks))
    console.print(
        f"published {stats.metrics} metrics and {stats.configs} configs in {stats.ticks} "
        f"ticks; reconciled {stats.commits} new commits ({stats.reconciled} changes)"
    )


def _parse_anomaly(spec: str | None):  # type: ignore[no-untyped-def]
    if not spec:
        return None
    try:
        service, kind, magnitude, at, ticks = spec.split(":")
        return service, kind, float(magnitude), int(at), int(ticks)
    except ValueError as exc:
        raise typer.BadParameter(
            "use SERVICE:KIND:MAGNITUDE:AT_TICK:TICKS, e.g. svc-0:load:3:50:20"
        ) from exc


app = simulate
