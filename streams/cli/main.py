"""`novacron`: the command line of NovaCron Automation (typer + rich)."""

from __future__ import annotations

import asyncio
import importlib
import sys
from pathlib import Path

import typer
from rich.console import Console

from streams.settings import Settings

console = Console(stderr=True)
app = typer.Typer(
    help="NovaCron Automation: stream-processing infrastructure automation on Kafka + ClickHouse.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
kafka_app = typer.Typer(help="The local single-node Apache Kafka 4.x broker (KRaft).")
topics_app = typer.Typer(help="The topic catalogue.")
app.add_typer(kafka_app, name="kafka")
app.add_typer(topics_app, name="topics")

# Sub-command groups living in their own modules: (module, attribute, command name).
MOUNTS: tuple[tuple[str, str, str], ...] = (
    ("streams.cli.history", "sql_app", "sql"),
    ("streams.cli.audit", "audit_app", "audit"),
    ("streams.cli.simulate", "app", "simulate"),
    ("streams.cli.demo", "app", "demo"),
    ("streams.cli.evaluate", "app", "eval"),
    ("streams.cli.dqn", "train_app", "train"),
    ("streams.cli.dqn", "model_app", "model"),
    ("streams.cli.policy", "app", "policy"),
    ("streams.cli.approve", "approve_app", "approve"),
    ("streams.cli.approve", "reject_app", "reject"),
    ("streams.cli.drift", "app", "drift"),
    ("streams.cli.baseline", "app", "baseline"),
    ("streams.cli.runbook", "app", "runbook"),
    ("streams.cli.compliance", "app", "compliance"),
    ("streams.cli.bench", "app", "bench"),
    ("streams.cli.gitops", "app", "gitops"),
    ("streams.cli.terraform", "app", "terraform"),
    ("streams.cli.collect", "app", "collect"),
)


def _mount() -> None:
    for module_name, attr, name in MOUNTS:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name != module_name:
                raise
            continue  # that part of the product is not installed in this build
        sub = getattr(module, attr)
        if isinstance(sub, typer.Typer):
            app.add_typer(sub, name=name)
        else:
            app.command(name)(sub)


@app.command()
def worker(
    role: str = typer.Option(..., "--role", "-r", help="ingest, learn, govern, execute or collect"),
    loglevel: str = typer.Option("info", help="Log level of the worker"),
    web_port: int | None = typer.Option(None, help="Web port (default: web.port + role index)"),
) -> None:
    """Run one worker role as its own process, Faust app and consumer group."""
    from streams.roles import ROLES
    from streams.worker import run_worker

    if role not in ROLES:
        console.print(f"[red]unknown role {role!r}[/]; roles: {', '.join(ROLES)}")
        raise typer.Exit(2)
    sys.argv = [sys.argv[0], "worker"]  # faust's Worker reads argv; hide ours from it
    run_worker(role, loglevel=loglevel, web_port=web_port)


@kafka_app.command("start")
def kafka_start(
    port: int | None = typer.Option(None, help="Client port (controller uses port+1); default "
                                    "9092, or 9192 with --sasl"),
    sasl: bool = typer.Option(False, help="SASL/SCRAM-SHA-256 with ACLs: one user per role"),
) -> None:
    """Fetch the jars (once), format KRaft storage and start the broker; waits until it answers."""
    from streams.kafka_local import SASL_PORT, KafkaLocal, LocalKafkaConfig

    kafka = KafkaLocal(LocalKafkaConfig(port=port or (SASL_PORT if sasl else 9092), sasl=sasl))
    with console.status("starting Kafka…"):
        bootstrap = kafka.start()
    console.print(f"Kafka ready on [bold]{bootstrap}[/]")
    if sasl:
        console.print(f"SCRAM users {', '.join(kafka.users())}; passwords in "
                      f"{kafka.cfg.run_dir / 'secrets'}; `novacron kafka acls --local` grants "
                      "the roles their topics")


@kafka_app.command("acls")
def kafka_acls(
    role: list[str] = typer.Option([], "--role", "-r", help="Only these roles (default: all)"),
    apply: bool = typer.Option(False, help="Create them on the broker (NOVACRON_KAFKA__* must "
                               "name a user allowed to alter ACLs, e.g. the admin)"),
    local: bool = typer.Option(False, help="Apply them to the local SASL broker as its admin"),
    command_config: str = typer.Option("admin.properties", help="--command-config of the "
                                       "printed kafka-acls.sh commands"),
    table: bool = typer.Option(False, help="Print who reads and writes which topic instead"),
) -> None:
    """The per-role ACLs (docs/threat-model.md): kafka-acls.sh commands, a table, or applied."""
    from streams.cli.kafka_acls import run_acls

    raise typer.Exit(run_acls(role, apply=apply, local=local, command_config=command_config,
                              table=table))


@kafka_app.command("stop")
def kafka_stop(
    port: int | None = typer.Option(None, help="Client port (default 9092, or 9192 with --sasl)"),
    sasl: bool = typer.Option(False, help="The SASL/SCRAM broker"),
) -> None:
    """Stop the local broker by its PID."""
    from streams.kafka_local import SASL_PORT, KafkaLocal, LocalKafkaConfig

    config = LocalKafkaConfig(port=port or (SASL_PORT if sasl else 9092), sasl=sasl)
    stopped = KafkaLocal(config).stop()
    console.print("stopped" if stopped else "not running")


@kafka_app.command("status")
def kafka_status(
    port: int | None = typer.Option(None, help="Client port (default 9092, or 9192 with --sasl)"),
    sasl: bool = typer.Option(False, help="The SASL/SCRAM broker (asks as its admin)"),
) -> None:
    """Show whether the local broker runs and answers."""
    from streams.kafka_local import SASL_PORT, KafkaLocal, LocalKafkaConfig

    config = LocalKafkaConfig(port=port or (SASL_PORT if sasl else 9092), sasl=sasl)
    status = KafkaLocal(config).status()
    console.print_json(data=status)
    raise typer.Exit(0 if status["answers"] else 1)


@topics_app.command("create")
def topics_create() -> None:
    """Create every catalogue topic that does not exist yet (idempotent)."""
    from streams.topics import create_topics

    created = asyncio.run(create_topics(Settings().kafka))
    console.print(f"created {len(created)} topics" + (": " + ", ".join(created) if created else ""))


@topics_app.command("list")
def topics_list() -> None:
    """Print the catalogue: names, event types, keys, compaction, retention."""
    from rich.table import Table

    from streams.topics import CATALOGUE

    kafka = Settings().kafka
    table = Table("topic", "event type", "key", "cleanup", "retention (days)")
    for spec in CATALOGUE.values():
        days = "-" if spec.compacted else f"{spec.retention_ms / 86_400_000:g}"
        cleanup = "compact" if spec.compacted else "delete"
        table.add_row(kafka.topic(spec.name), spec.event_type.event_type, spec.key, cleanup, days)
    Console().print(table)


@app.command()
def produce(
    topic: str = typer.Argument(..., help="Logical topic: metrics, config, desired, actions, …"),
    file: Path = typer.Argument(..., exists=True, help="JSON lines, one event per line"),
    fmt: str = typer.Option("json", "--format", help="Wire format: json or avro"),
) -> None:
    """Validate events from a JSON-lines file and publish them (invalid lines are reported)."""
    from schemas import TOPIC_TYPES
    from schemas.errors import DeadLetterError
    from streams.publish import publish

    if topic not in TOPIC_TYPES or fmt not in ("json", "avro"):
        console.print(f"[red]unknown topic {topic!r} or format {fmt!r}[/]")
        raise typer.Exit(2)
    settings = Settings()
    codec, events, bad = settings.codec(), [], 0
    for n, line in enumerate(file.read_bytes().splitlines(), 1):
        try:
            events.append(codec.decode(line, TOPIC_TYPES[topic]))
        except DeadLetterError as exc:
            bad += 1
            console.print(f"[yellow]line {n}: {exc.reason}[/]")
    sent = publish(events, settings, fmt)  # type: ignore[arg-type]
    console.print(f"sent {sent} events to {settings.kafka.topic(topic)}; {bad} invalid lines")
    raise typer.Exit(1 if bad else 0)


def _merge_eval() -> None:
    # `novacron eval` gathers the evaluations of several modules (NAB/forecast, autoscale)
    try:
        from streams.cli.dqn import eval_app
        from streams.cli.evaluate import app as evaluate_app
    except ModuleNotFoundError:
        return
    evaluate_app.registered_commands.extend(eval_app.registered_commands)


def main() -> None:
    """Console entry point."""
    _merge_eval()
    _mount()
    app()


if __name__ == "__main__":
    main()
