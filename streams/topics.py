"""The topic catalogue (SPEC §3) declared in one place, and `novacron topics create`."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from schemas import TOPIC_TYPES, Event
from streams import kafka_clients
from streams.roles import ROLES
from streams.settings import KafkaConfig

__all__ = ["CATALOGUE", "INTERNAL_TOPICS", "TopicSpec", "create_topics", "state_topics"]

DAY_MS = 86_400_000


@dataclass(frozen=True)
class TopicSpec:
    """One logical topic: what it carries, how it is keyed, compaction and retention."""

    name: str
    event_type: type[Event]
    key: str
    compacted: bool = False
    retention_ms: int = 7 * DAY_MS
    external_input: bool = False  # written by producers outside the project: ingest dead-letters it

    def config(self) -> dict[str, str]:
        if self.compacted:
            return {"cleanup.policy": "compact", "min.compaction.lag.ms": "60000"}
        return {"cleanup.policy": "delete", "retention.ms": str(self.retention_ms)}


def _spec(name: str, key: str, **kw: object) -> TopicSpec:
    return TopicSpec(name, TOPIC_TYPES[name], key, **kw)  # type: ignore[arg-type]


CATALOGUE: dict[str, TopicSpec] = {
    s.name: s
    for s in (
        _spec("metrics", "resource_id", external_input=True),
        _spec("config", "resource_id", external_input=True),
        _spec("desired", "resource_id", compacted=True),
        _spec("policies", "policy_id", compacted=True),
        _spec("insights", "resource_id"),
        _spec("decisions", "resource_id"),
        # the decision log: one PolicyVerdict per evaluation (not in SPEC §3's list; the govern
        # role cannot write ClickHouse itself, so verdicts travel to the sink on their own topic)
        _spec("verdicts", "resource_id"),
        _spec("approvals", "request_id", retention_ms=30 * DAY_MS),
        _spec("actions", "action_id", retention_ms=30 * DAY_MS),
        _spec("outcomes", "action_id", retention_ms=30 * DAY_MS),
        _spec("drift", "resource_id"),
        _spec("compliance", "resource_id"),
        _spec("dlq", "source topic/partition", retention_ms=30 * DAY_MS),
        # the latest sync per config repository: what is serving (compacted; every sync also
        # lands in ClickHouse, `git_syncs`)
        _spec("gitops", "repo", compacted=True),
        # online learning's verdicts on model candidates (promoted or rejected, with the
        # shadow evaluation's numbers), keyed by model; they land in `model_promotions`
        _spec("promotions", "model", retention_ms=30 * DAY_MS),
    )
}
"""Every topic of the product by logical name (the prefix is added by KafkaConfig.topic)."""

INTERNAL_TOPICS: dict[str, str] = {
    "drift-ignores": "compacted drift ignore rules, keyed by rule id (CLI and API write them)",
    "compliance-attestations": "compacted attestations and risk acceptances, keyed by "
    "kind/control/resource (CLI and API write them)",
    "model-versions": "compacted deployed DQN version (`novacron model rollback` writes it)",
    "executor-journal": "compacted per-action step journal (at-most-once execution)",
    "audit-heads": "compacted signed audit-chain heads, keyed by chain (audit verify's anchor)",
    "runbooks": "compacted runbook registry (YAML + content hash), keyed by runbook id (gitops, "
    "API and CLI write it; gate and executor fold it into their library)",
}
"""Compacted topics that are not event streams: operator-set shared state, the journal.

Besides these, every worker role has a compacted `{role}-state` topic for its agents' per-key
state (learn: models and cooldowns; govern: open findings and violation lifecycles; collect: the
Alertmanager receiver's open alerts, by fingerprint)."""


def state_topics(roles: Iterable[str]) -> list[str]:
    """The state topic of each role (`learn-state`, …), co-partitioned with the inputs."""
    return [f"{role}-state" for role in roles]


async def create_topics(cfg: KafkaConfig, roles: Iterable[str] = ROLES) -> list[str]:
    """Create every catalogue, internal and role state topic that does not exist yet; return
    the names created."""
    admin = kafka_clients.admin(cfg)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        wanted = [
            NewTopic(
                cfg.topic(s.name), cfg.partitions, cfg.replication_factor, topic_configs=s.config()
            )
            for s in CATALOGUE.values()
        ] + [
            NewTopic(
                cfg.topic(name),
                cfg.partitions,
                cfg.replication_factor,
                topic_configs={"cleanup.policy": "compact"},
            )
            # dict.fromkeys: one topic per name even if a role's state topic is also listed
            for name in dict.fromkeys([*INTERNAL_TOPICS, *state_topics(roles)])
        ]
        new = [t for t in wanted if t.name not in existing]
        if new:
            try:
                await admin.create_topics(new)
            except TopicAlreadyExistsError:
                pass  # a concurrent creator won the race; the topics exist either way
            await _wait_ready(admin, [t.name for t in new])
        return [t.name for t in new]
    finally:
        await admin.close()


async def _wait_ready(admin: AIOKafkaAdminClient, names: list[str], timeout: float = 30.0) -> None:
    """Return once every topic has a leader for each partition: a consumer that starts right
    after creation and finds no metadata would otherwise wait for its next metadata refresh."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        described = await admin.describe_topics(names)
        ready = [
            t
            for t in described
            if not t.get("error_code")
            and t.get("partitions")
            and all(p.get("leader", -1) >= 0 for p in t["partitions"])
        ]
        if len(ready) == len(names):
            return
        await asyncio.sleep(0.2)
    raise TimeoutError(f"topics not ready after {timeout:.0f}s: {sorted(names)}")
