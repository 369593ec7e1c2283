"""Issue 5 on a real broker: blocked decisions never act; one that needs approval waits, is
approved with `novacron approve`, then acts; every evaluation leaves a decision-log row."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from typing import Any

import httpx
import orjson
import pytest

from agents.control_api import hash_token
from schemas import Decision, DesiredState, Event, Insight
from streams.publish import publish_async
from streams.settings import KafkaConfig, Settings
from tests.integration.conftest import kafka_env, wait_until

pytestmark = pytest.mark.kafka
TOKEN = "test-operator-token"


def send(cfg: KafkaConfig, *events: Event) -> None:
    asyncio.run(publish_async(list(events), Settings(kafka=cfg)))


def cli(cfg: KafkaConfig, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, **kafka_env(cfg))
    return subprocess.run([sys.executable, "-m", "streams.cli.main", *args], env=env,
                          capture_output=True, text=True, timeout=60)


def rows(worker: Any, table: str, where: str) -> list[dict[str, Any]]:
    return worker.sql(f"SELECT * FROM novacron.{table} FINAL WHERE {where} ORDER BY event_time")


def ids(decisions: list[Decision]) -> str:
    return ", ".join(f"'{d.event_id}'" for d in decisions)


def test_blocked_never_acts_and_approved_acts_after_the_cli(worker_factory, kafka_cfg) -> None:  # type: ignore[no-untyped-def]
    ingest = worker_factory("ingest")
    # the declared baseline says svc-prod is production; the gate reads `desired` before it
    # evaluates anything, so the fact is known to the first decision
    send(kafka_cfg, DesiredState(resource_id="svc-prod", resource_type="novacron_service",
                                 config={"replicas": 4, "tags": {"environment": "production"}}))
    tokens = {hash_token(TOKEN): {"user": "olga", "role": "operator"}}
    govern = worker_factory("govern", NOVACRON_API__TOKENS=orjson.dumps(tokens).decode())
    # /status tells a deployment's readiness probe when the gate has its policies
    wait_until(lambda: httpx.get(f"{govern.url}/status", timeout=5).json()["agents"].get("gate")
               == "ready", timeout=60, what="the gate's readiness on /status")
    # an anomaly opens an incident on vm-hot (and a forecast, which the gate skips undecoded)
    send(kafka_cfg, Insight(resource_id="vm-hot", kind="forecast", metric="cpu_usage", value=50),
         Insight(resource_id="vm-hot", kind="anomaly", metric="cpu_usage", score=0.97))
    wait_until(lambda: httpx.get(f"{govern.url}/gate", params={"resource": "vm-hot"}, timeout=5
                                 ).json()["in_incident"], timeout=30, what="the incident flag")

    # action safety: at most 3 migrations per hour, the 4th is denied; security: no firewall off
    migrations = [Decision(resource_id="vm-dev", decision_type="migrate_vm", confidence=0.9,
                           params={"target_region": "eu-west-1"}) for _ in range(4)]
    firewall = Decision(resource_id="vm-dev", decision_type="disable_feature",
                        params={"feature": "firewall"})
    prod = Decision(resource_id="svc-prod", decision_type="scale_up", confidence=0.9,
                    params={"delta": 1}, reasoning="cpu above 85 % for 10 minutes")
    incident = Decision(resource_id="vm-hot", decision_type="scale_down", confidence=0.9)
    shadow = Decision(resource_id="vm-dev-3", decision_type="scale_up", mode="shadow")
    unsure = Decision(resource_id="vm-dev-4", decision_type="rebalance_load", confidence=0.3)
    free = Decision(resource_id="vm-dev-2", decision_type="scale_up", confidence=0.9)
    everything = [*migrations, firewall, prod, incident, shadow, unsure, free]
    send(kafka_cfg, *everything)

    wait_until(lambda: ingest.scalar(
        f"SELECT uniqExact(decision_id) FROM novacron.policy_verdicts WHERE decision_id IN "
        f"({ids(everything)})") == len(everything), timeout=60, what="a verdict per decision")
    wait_until(lambda: len(rows(ingest, "approvals", f"request_id = '{prod.event_id}'")) >= 1,
               timeout=30, what="the pending approval in ClickHouse")
    wait_until(lambda: ingest.scalar(
        f"SELECT count() FROM novacron.actions FINAL WHERE decision_id IN "
        f"({ids([*migrations[:3], free])})") == 4, timeout=30, what="the allowed actions")

    verdicts = {r["decision_id"]: r for r in rows(ingest, "policy_verdicts",
                                                  f"decision_id IN ({ids(everything)})")}
    assert [verdicts[d.event_id]["outcome"] for d in migrations] == ["allow"] * 3 + ["deny"]
    assert verdicts[migrations[3].event_id]["reasons"] == [
        "novacron.safety.actions: 3 migrations of vm-dev in the last hour (limit 3)"]
    assert verdicts[firewall.event_id]["outcome"] == "deny"
    assert any("firewall" in r for r in verdicts[firewall.event_id]["reasons"])
    assert verdicts[incident.event_id]["reasons"] == [
        "novacron.safety.actions: no scale_down of vm-hot during an open incident"]
    assert verdicts[shadow.event_id]["outcome"] == "allow"  # recorded, but shadows never act
    assert verdicts[unsure.event_id]["outcome"] == "needs_approval"
    assert verdicts[prod.event_id]["outcome"] == "needs_approval"
    assert any("production" in r for r in verdicts[prod.event_id]["reasons"])
    for v in verdicts.values():  # decision-log rows: input hash, policy versions, latency
        assert len(v["input_hash"]) == 64
        assert "novacron.safety.actions" in v["policy_versions"]
        assert v["correlation_id"]
    pending = rows(ingest, "approvals", f"request_id = '{prod.event_id}'")
    assert [a["status"] for a in pending] == ["pending"]
    assert pending[0]["correlation_id"] == prod.correlation_id
    blocked = ids([migrations[3], firewall, prod, incident, shadow, unsure])
    assert ingest.scalar(f"SELECT count() FROM novacron.actions WHERE decision_id IN ({blocked})"
                         ) == 0

    # the control API on the govern worker's web port lists the pending request
    api = httpx.get(f"{govern.url}/api/approvals", timeout=10,
                    headers={"Authorization": f"Bearer {TOKEN}"})
    assert api.status_code == 200, api.text
    assert {a["request_id"] for a in api.json()["pending"]} == {prod.event_id, unsure.event_id}
    assert httpx.get(f"{govern.url}/api/approvals", timeout=10).status_code == 401

    done = cli(kafka_cfg, "approve", prod.event_id, "--by", "alice", "--reason", "ok")
    assert done.returncode == 0, done.stdout + done.stderr
    no = cli(kafka_cfg, "reject", unsure.event_id, "--by", "alice", "--reason", "not now")
    assert no.returncode == 0, no.stdout + no.stderr

    action = wait_until(lambda: rows(ingest, "actions", f"decision_id = '{prod.event_id}'"),
                        timeout=30, what="the approved action")
    assert len(action) == 1
    assert action[0]["action_type"] == "scale_up"
    assert action[0]["correlation_id"] == prod.correlation_id  # one chain, decision → action
    decided = rows(ingest, "approvals", f"request_id = '{prod.event_id}' AND status = 'approved'")
    assert [(a["by"], a["reason"]) for a in decided] == [("alice", "ok")]
    assert ingest.scalar(f"SELECT count() FROM novacron.actions WHERE decision_id IN ({blocked})"
                         ) == 1  # only the approved one; denied, shadow, rejected never act
    wait_until(lambda: rows(ingest, "approvals", f"request_id = '{unsure.event_id}' AND "
                            "status = 'rejected'"), timeout=30, what="the rejection")
    wait_until(lambda: httpx.get(f"{govern.url}/gate", timeout=5).json()["pending"] == 0,
               timeout=30, what="nothing pending (released and dropped)")
    assert ingest.scalar(f"SELECT count() FROM novacron.actions WHERE decision_id IN ({blocked})"
                         ) == 1

    again = cli(kafka_cfg, "approve", prod.event_id, "--by", "bob", "--wait", "0")
    assert again.returncode == 1
    assert "already approved by alice" in again.stderr


def test_unanswered_requests_expire_and_a_late_yes_does_not_act(worker_factory, kafka_cfg  # type: ignore[no-untyped-def]
                                                                 ) -> None:
    ingest = worker_factory("ingest")
    worker_factory("govern", NOVACRON_GATE__APPROVAL_TTL_SECONDS="2")
    unsure = Decision(resource_id="vm-1", decision_type="scale_up", confidence=0.2)
    send(kafka_cfg, unsure)

    expired = wait_until(lambda: rows(ingest, "approvals", f"request_id = '{unsure.event_id}' "
                                      "AND status = 'expired'"), timeout=60, what="the expiry")
    assert expired[0]["reason"] == "no decision within 2 s"
    assert expired[0]["correlation_id"] == unsure.correlation_id
    late = cli(kafka_cfg, "approve", unsure.event_id, "--by", "alice", "--wait", "0")
    assert late.returncode == 1
    assert "already expired" in late.stderr
    statuses = [r["status"] for r in rows(ingest, "approvals", f"request_id = '{unsure.event_id}'")]
    assert statuses == ["pending", "expired"]
    assert ingest.scalar(f"SELECT count() FROM novacron.actions WHERE decision_id = "
                         f"'{unsure.event_id}'") == 0
