"""Per-role Kafka ACLs: who may read and write which topic (`novacron kafka acls`).

Reads come from the wiring table and the catalogue; writes are declared below, per principal.
The rules print as kafka-acls.sh commands or are applied through the admin API.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from schemas.attestations import ATTESTATION_TOPIC
from streams.roles import ROLES
from streams.settings import KafkaConfig
from streams.topics import CATALOGUE, INTERNAL_TOPICS

__all__ = ["PRINCIPAL_ROLES", "Acl", "RoleAccess", "access", "acls", "apply_acls",
           "kafka_acls_commands", "kafka_user"]

OPERATOR = "operator"
"""The CLI's principal: operator-set topics (policies, baselines, approvals, rollbacks…)."""
PRINCIPAL_ROLES: tuple[str, ...] = (*ROLES, OPERATOR)
"""Every principal but the admin (the super user that creates topics and ACLs)."""
HEADS, JOURNAL, COLLECT_STATE = "audit-heads", "executor-journal", "collect-state"

# What the roles that are not (only) rows of the wiring table consume with their own loops:
# ingest lands every catalogue topic; the gate follows its inputs; the executor its journal.
_OWN_READS: dict[str, tuple[str, ...]] = {
    "ingest": (*CATALOGUE, HEADS),
    "govern": ("decisions", "insights", "policies", "desired", "approvals", "runbooks"),
    "execute": ("actions", "approvals", "runbooks", JOURNAL),
    "collect": (COLLECT_STATE,),
    OPERATOR: (*CATALOGUE, *INTERNAL_TOPICS),
}
# What each principal produces (every role may dead-letter what it cannot use).
_WRITES: dict[str, tuple[str, ...]] = {
    "ingest": ("dlq", HEADS),
    "learn": ("insights", "decisions", "promotions", "dlq"),
    # gate: verdicts, actions; drift/compliance (+ their remediation decisions); the control API
    # and the GitOps reconciler: the operator-set topics, in one transaction per sync
    "govern": ("verdicts", "actions", "approvals", "decisions", "drift", "compliance", "dlq",
               "policies", "runbooks", "desired", "drift-ignores", ATTESTATION_TOPIC, "gitops"),
    "execute": ("outcomes", JOURNAL, "dlq"),
    "collect": ("metrics", "decisions", "outcomes", "dlq", COLLECT_STATE),
    OPERATOR: ("metrics", "config", "desired", "policies", "approvals", "runbooks",
               "drift-ignores", ATTESTATION_TOPIC, "model-versions"),
}


def kafka_user(role: str) -> str:
    """The SASL user (ACL principal `User:<name>`) of a role."""
    return f"novacron-{role}"


@dataclass(frozen=True)
class RoleAccess:
    """What one principal may do, by logical topic name and full group / transaction ids."""

    role: str
    reads: tuple[str, ...]
    writes: tuple[str, ...]
    groups: tuple[str, ...]
    transactional_prefix: str | None = None


def _wired_reads(role: str) -> tuple[str, ...]:
    from streams.wiring import WIRING, rows_of, state_topic

    rows = rows_of(role, WIRING)
    if not rows:
        return ()
    return (*(t for r in rows for t in (*r.inputs, *r.follows)), state_topic(role))


def access(kafka: KafkaConfig) -> dict[str, RoleAccess]:
    """Every principal's topics and groups: wiring rows, own loops, declared writes."""
    faust = kafka.topic_prefix.rstrip(".") or "novacron"
    out: dict[str, RoleAccess] = {}
    for role in PRINCIPAL_ROLES:
        wired = _wired_reads(role)
        writes = _WRITES[role] + ((wired[-1],) if wired else ())  # a host writes its state topic
        # Faust's consumer group is its app id
        groups: tuple[str, ...] = () if role == OPERATOR else (f"{faust}-{role}",)
        if wired:
            groups += (kafka.topic(role),)  # the generic host's group (streams/runner.py)
        if role == "ingest":
            groups += (kafka.topic("sink"),)
        out[role] = RoleAccess(
            role, tuple(dict.fromkeys((*wired, *_OWN_READS.get(role, ())))),
            tuple(dict.fromkeys(writes)), groups,
            kafka.topic("gitops-") if role == "govern" else None)
    return out


Resource = Literal["topic", "group", "transactional-id"]
Operation = Literal["Read", "Write", "Describe", "All"]


@dataclass(frozen=True)
class Acl:
    """One allow rule: principal, operation, resource (literal name or prefix)."""

    principal: str
    operation: Operation
    resource: Resource
    name: str
    prefixed: bool = False


def acls(kafka: KafkaConfig, roles: Iterable[str] = PRINCIPAL_ROLES) -> list[Acl]:
    """The allow rules of the principals (everything else is denied by the authorizer)."""
    table = access(kafka)
    out: list[Acl] = []
    for role in roles:
        a, who = table[role], f"User:{kafka_user(role)}"
        out += [Acl(who, "Read", "topic", kafka.topic(t)) for t in a.reads]
        out += [Acl(who, "Write", "topic", kafka.topic(t)) for t in a.writes]
        out += [Acl(who, "Read", "group", g) for g in a.groups]
        if role != OPERATOR:  # Faust's own topics (assignor leader) are named after its app id
            out.append(Acl(who, "All", "topic", f"{a.groups[0]}-", prefixed=True))
        if a.transactional_prefix:
            out += [Acl(who, op, "transactional-id", a.transactional_prefix, prefixed=True)
                    for op in ("Write", "Describe")]
    return out


def kafka_acls_commands(rules: list[Acl], bootstrap: str, command_config: str) -> list[str]:
    """The rules as `kafka-acls.sh --add` commands, one per principal, operation and resource."""
    grouped: dict[tuple[str, str, str, bool], list[str]] = {}
    for r in rules:
        grouped.setdefault((r.principal, r.operation, r.resource, r.prefixed), []).append(r.name)
    lines = []
    for (who, op, resource, prefixed), names in grouped.items():
        targets = " ".join(f"--{resource} '{n}'" for n in names)
        pattern = " --resource-pattern-type prefixed" if prefixed else ""
        lines.append(f"kafka-acls.sh --bootstrap-server {bootstrap} --command-config "
                     f"{command_config} --add --allow-principal '{who}' --operation {op} "
                     f"{targets}{pattern}")
    return lines


_RESOURCE = {"topic": 2, "group": 3, "transactional-id": 5}
_OPERATION = {"All": 2, "Read": 3, "Write": 4, "Describe": 8}
_LITERAL, _PREFIXED, _ALLOW = 3, 4, 3


async def apply_acls(admin_kafka: KafkaConfig, rules: list[Acl]) -> int:
    """Create the rules on the broker as the admin (idempotent); return how many were sent."""
    from aiokafka.protocol.admin import CreateAclsRequest

    from schemas.errors import BackendUnavailable
    from streams.kafka_clients import admin

    client = admin(admin_kafka)
    await client.start()
    try:
        for r in rules:
            request = CreateAclsRequest(
                _RESOURCE[r.resource], r.name, _PREFIXED if r.prefixed else _LITERAL,
                r.principal, "*", _OPERATION[r.operation], _ALLOW)
            # aiokafka has the request but no public method for it yet
            response = await client._send_request(request)
            for result in response.to_object()["creation_responses"]:
                if result["error_code"]:
                    raise BackendUnavailable(f"creating ACL {r} failed: error "
                                             f"{result['error_code']} {result['error_message']}")
    finally:
        await client.close()
    return len(rules)
