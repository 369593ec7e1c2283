"""`novacron kafka acls`: print, tabulate or apply the per-role Kafka ACLs (streams/acls.py)."""

from __future__ import annotations

import asyncio

from rich.console import Console
from rich.table import Table

from schemas.errors import NovacronError
from streams.acls import PRINCIPAL_ROLES, access, acls, apply_acls, kafka_acls_commands, kafka_user
from streams.settings import KafkaConfig, Settings

__all__ = ["run_acls"]

err = Console(stderr=True)


def run_acls(roles: list[str], *, apply: bool, local: bool, command_config: str,
             table: bool) -> int:
    """Exit status: 0 done, 2 unknown role, 1 the broker refused."""
    unknown = sorted(set(roles) - set(PRINCIPAL_ROLES))
    if unknown:
        err.print(f"[red]unknown roles {unknown}[/]; roles: {', '.join(PRINCIPAL_ROLES)}")
        return 2
    chosen = [r for r in PRINCIPAL_ROLES if not roles or r in roles]
    kafka = _local_admin() if local else Settings().kafka
    rules = acls(kafka, chosen)
    if table:
        _table(kafka, chosen)
    elif not (apply or local):
        print("\n".join(kafka_acls_commands(rules, kafka.bootstrap, command_config)))
        return 0
    if apply or local:
        try:
            sent = asyncio.run(apply_acls(kafka, rules))
        except NovacronError as exc:
            err.print(f"[red]{exc}[/]")
            return 1
        err.print(f"created {sent} ACLs for {', '.join(kafka_user(r) for r in chosen)} "
                  f"on {kafka.bootstrap}")
    return 0


def _local_admin() -> KafkaConfig:
    from streams.kafka_local import SASL_PORT, KafkaLocal, LocalKafkaConfig

    base = Settings().kafka
    local = KafkaLocal(LocalKafkaConfig(port=SASL_PORT, sasl=True)).client_config()
    return local.model_copy(update={"topic_prefix": base.topic_prefix})


def _table(kafka: KafkaConfig, roles: list[str]) -> None:
    out = Table("principal", "reads", "writes", "groups")
    table = access(kafka)
    for role in roles:
        a = table[role]
        out.add_row(f"User:{kafka_user(role)}", ", ".join(a.reads), ", ".join(a.writes),
                    ", ".join(a.groups))
    Console().print(out)
