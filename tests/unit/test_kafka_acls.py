"""The per-role ACL table: derived from the wiring and the catalogue, least privilege where it
matters (only the gate writes actions), and the same table the threat model documents."""

from __future__ import annotations

import re
from pathlib import Path

from streams.acls import OPERATOR, PRINCIPAL_ROLES, access, acls, kafka_acls_commands, kafka_user
from streams.roles import ROLES
from streams.settings import KafkaConfig
from streams.topics import CATALOGUE, INTERNAL_TOPICS
from streams.wiring import WIRING, state_topic

ROOT = Path(__file__).resolve().parents[2]
KAFKA = KafkaConfig(topic_prefix="novacron.")
TABLE = access(KAFKA)


def _writers(topic: str) -> set[str]:
    return {role for role, a in TABLE.items() if topic in a.writes}


def test_every_wired_input_follow_and_state_topic_is_readable_by_its_role() -> None:
    for row in WIRING:
        a = TABLE[row.role]
        assert set(row.inputs) | set(row.follows) <= set(a.reads), row.name
        assert state_topic(row.role) in a.reads and state_topic(row.role) in a.writes


def test_ingest_lands_everything_and_writes_only_dead_letters_and_heads() -> None:
    assert set(CATALOGUE) <= set(TABLE["ingest"].reads)
    assert set(TABLE["ingest"].writes) == {"dlq", "audit-heads"}
    assert KAFKA.topic("sink") in TABLE["ingest"].groups


def test_only_the_gate_writes_actions_and_verdicts() -> None:
    assert _writers("actions") == {"govern"} and _writers("verdicts") == {"govern"}
    assert _writers("executor-journal") == {"execute"}
    assert _writers("audit-heads") == {"ingest"}
    assert "actions" in TABLE["execute"].reads and "actions" not in TABLE["learn"].reads


def test_every_topic_the_product_uses_has_a_writer_and_a_reader() -> None:
    used = [*CATALOGUE, *INTERNAL_TOPICS, *(state_topic(r) for r in ("learn", "govern", "collect"))]
    for topic in used:
        assert _writers(topic), f"nobody may write {topic}"
        assert any(topic in a.reads for role, a in TABLE.items() if role != OPERATOR), topic
    known = set(used)
    for role, a in TABLE.items():
        assert set(a.reads) | set(a.writes) <= known, role


def test_rules_name_full_topics_groups_and_faust_prefixes() -> None:
    rules = acls(KAFKA)
    assert {r.principal for r in rules} == {f"User:{kafka_user(r)}" for r in PRINCIPAL_ROLES}
    topics = {r.name for r in rules if r.resource == "topic" and not r.prefixed}
    assert all(t.startswith("novacron.") for t in topics)
    faust = {(r.principal, r.name) for r in rules if r.prefixed and r.resource == "topic"}
    assert faust == {(f"User:{kafka_user(r)}", f"novacron-{r}-") for r in ROLES}
    tx = [r for r in rules if r.resource == "transactional-id"]
    assert {(r.principal, r.name, r.prefixed) for r in tx} == {
        ("User:novacron-govern", "novacron.gitops-", True)}
    lines = kafka_acls_commands(acls(KAFKA, ["execute"]), "kafka:9092", "admin.properties")
    assert any("--operation Write --topic 'novacron.outcomes'" in x for x in lines)
    assert all("--allow-principal 'User:novacron-execute'" in x for x in lines)


def test_the_threat_model_documents_this_table() -> None:
    doc = (ROOT / "docs" / "threat-model.md").read_text()
    for role in PRINCIPAL_ROLES:
        row = re.search(rf"^\| `?{kafka_user(role)}`? \|(.+)$", doc, re.M)
        assert row, f"docs/threat-model.md has no row for {kafka_user(role)}"
        cells = [c.strip() for c in row.group(1).split("|")]
        written = set(re.findall(r"`([\w-]+)`", cells[1]))
        assert written == set(TABLE[role].writes), role


def test_the_command_prints_kafka_acls_commands(capsys, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from streams.cli.kafka_acls import run_acls

    monkeypatch.setenv("NOVACRON_KAFKA__BOOTSTRAP", "kafka:29092")
    assert run_acls(["execute"], apply=False, local=False, command_config="admin.properties",
                    table=False) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines and all(x.startswith("kafka-acls.sh --bootstrap-server kafka:29092 "
                                      "--command-config admin.properties --add") for x in lines)
    assert run_acls(["nobody"], apply=False, local=False, command_config="x",
                    table=False) == 2
