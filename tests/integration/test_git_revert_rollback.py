"""Rollback of a config-repository commit, on the broker: the executor commits a change for a
service (a verified `git` step), the service then turns slow; the deploy watch proposes reverting
that commit, the gate holds it for approval (the Rego rule on rollbacks), it is approved, the
executor reverts the commit in the real repository and reads it back, and deploy → anomaly →
rollback decision → verdict → action → outcome is one `novacron audit chain`. Forged proposals
(an unconfigured repository, a ref instead of a commit id, an unknown commit) are refused with
their reasons and commit nothing."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from runbooks.steps.gitcli import trailers
from schemas import Decision, Event, MetricSample
from sinks.queries import chain
from streams.publish import publish_async
from streams.settings import KafkaConfig, Settings
from tests.integration.conftest import VIEWER_TOKEN, WorkerProcess, wait_until
from tests.integration.test_deploy_rollback import cli
from tests.unit.effector_support import bare_repo, commits, read

pytestmark = pytest.mark.kafka
SERVICE = "svc-cart"
FILE = f"services/{SERVICE}.yaml"


def send(cfg: KafkaConfig, *events: Event) -> None:
    asyncio.run(publish_async(list(events), Settings(kafka=cfg)))


class _Reader:
    """`sinks.queries` over the ingest worker's /sql (the worker holds the chDB folder)."""

    def __init__(self, worker: WorkerProcess) -> None:
        self.worker = worker

    def query(self, sql: str) -> list[dict[str, Any]]:
        return self.worker.sql(sql)


def approve(cfg: KafkaConfig, ingest: WorkerProcess, request: str) -> None:
    wait_until(lambda: ingest.sql(f"SELECT status FROM approvals FINAL WHERE request_id = "
                                  f"'{request}'"), timeout=30, what="the pending approval")
    approved = cli(cfg, "approve", request, "--by", "alice", "--reason", "bad deploy")
    assert approved.returncode == 0, approved.stdout + approved.stderr


def final_outcome(ingest: WorkerProcess, where: str) -> dict[str, Any]:
    [row] = wait_until(lambda: ingest.sql(
        "SELECT action_id, status, error FROM outcomes FINAL WHERE scope = 'action' "
        f"AND status NOT IN ('started', 'waiting_approval') AND {where}"),
        timeout=40, what=f"the outcome where {where}")
    return row


def verdicts(ingest: WorkerProcess, *decisions: Decision) -> dict[str, dict[str, Any]]:
    ids = ", ".join(f"'{d.event_id}'" for d in decisions)
    rows = wait_until(lambda: (lambda r: r if len(r) == len(decisions) else None)(ingest.sql(
        f"SELECT decision_id, outcome, reasons FROM policy_verdicts FINAL "
        f"WHERE decision_id IN ({ids})")), timeout=30, what="a verdict per decision")
    return {str(r["decision_id"]): r for r in rows}


def causes(rows: list[dict[str, Any]], last: str) -> list[str]:
    """Event types from `last` back along causation ids to the chain's first event."""
    by_id = {str(r["event_id"]): r for r in rows}
    path, at = [], by_id.get(last)
    while at is not None and len(path) < 50:
        path.append(f"{at['event_type']}:{at['event_id']}")
        at = by_id.get(str(at["causation_id"] or ""))
    return path[::-1]


def test_a_slow_service_after_a_config_commit_is_reverted(worker_factory, kafka_cfg,  # type: ignore[no-untyped-def]
                                                          tmp_path: Path) -> None:
    repo = bare_repo(tmp_path, {FILE: {"service": SERVICE, "replicas": 2}})
    ingest = worker_factory("ingest")
    worker_factory("govern")
    worker_factory("learn", NOVACRON_DEPLOY_WATCH__LATENCY_SLO_MS="250",
                   NOVACRON_DEPLOY_WATCH__BREACH_SAMPLES="2",
                   NOVACRON_DECISION__SHADOW="true")  # the DQN only watches: no other commits
    worker_factory("execute", NOVACRON_EXECUTOR__DEFAULTS=json.dumps({"config_repo": str(repo)}))

    # the deploy: an approved scale-up, committed by the executor's git step and read back
    send(kafka_cfg, Decision(resource_id=SERVICE, decision_type="scale_up", confidence=0.9,
                             params={"delta": 3}))
    [(deployed, message), _] = wait_until(lambda: (lambda c: c if len(c) == 2 else None)(
        commits(repo)), timeout=40, what="the executor's commit")
    assert read(repo, FILE)["replicas"] == 5
    chain_id = trailers(message)["NovaCron-Correlation-Id"]

    def proposed() -> list[dict[str, Any]]:  # the injected anomaly: the service turns slow
        slow = [MetricSample(resource_id=SERVICE, resource_type="service",
                             network_latency_ms=900.0) for _ in range(2)]
        send(kafka_cfg, *slow)
        return ingest.sql("SELECT event_id, correlation_id, params, requires_approval "
                          "FROM decisions FINAL WHERE origin = 'gitops'")

    [decision] = wait_until(proposed, timeout=40, interval=1, what="the rollback proposal")
    assert json.loads(str(decision["params"])) == {"runbook": "gitops-revert",
                                                   "commit": deployed, "repository": "config"}
    assert decision["correlation_id"] == chain_id  # the deploy's own chain
    request = str(decision["event_id"])
    [verdict] = verdicts(ingest, Decision(event_id=request, resource_id=SERVICE,
                                          decision_type="run_runbook")).values()
    assert verdict["outcome"] == "needs_approval"
    assert any("rolling back a deploy (gitops-revert on svc-cart)" in r
               for r in verdict["reasons"]), verdict  # type: ignore[attr-defined]
    approve(kafka_cfg, ingest, request)

    outcome = final_outcome(ingest, f"correlation_id = '{chain_id}' AND action_id IN (SELECT "
                                    f"action_id FROM actions WHERE runbook = 'gitops-revert')")
    assert outcome["status"] == "succeeded", outcome
    (revert, revert_message), (head, _), _ = commits(repo)
    assert head == deployed and trailers(revert_message)["NovaCron-Reverts"] == deployed
    assert trailers(revert_message)["NovaCron-Correlation-Id"] == chain_id
    assert read(repo, FILE)["replicas"] == 2  # the deploy is undone in the repository
    steps = ingest.sql("SELECT step_id, output FROM outcomes FINAL WHERE scope = 'step' AND "
                       f"status = 'succeeded' AND action_id = '{outcome['action_id']}'")
    outputs = {str(s["step_id"]): json.loads(str(s["output"])) for s in steps}
    assert outputs["revert"]["commit"] == revert and outputs["verify"]["verified"] is True
    assert outputs["verify"]["patch_id"] == outputs["revert"]["patch_id"]

    # one causal chain, deploy to outcome, through the audit library and the CLI
    rows = chain(_Reader(ingest), "novacron", chain_id)
    final = next(str(r["event_id"]) for r in rows if r["event_type"] == "Outcome" and
                 json.loads(str(r["payload"])).get("action_id") == outcome["action_id"] and
                 json.loads(str(r["payload"])).get("scope") == "action" and
                 json.loads(str(r["payload"])).get("status") == "succeeded")
    kinds = [p.split(":")[0] for p in causes(rows, final)]
    print("causal path:", " → ".join(kinds))
    deploy_at = max(i for i, k in enumerate(kinds) if k == "Outcome" and i < kinds.index(
        "Insight"))
    walked = kinds[deploy_at:]
    assert [k for k in walked if k != "Approval"] == [
        "Outcome", "Insight", "Decision", "PolicyVerdict", "Action", "Outcome"], kinds
    shown = cli(kafka_cfg, "audit", "chain", chain_id, "--sql-url", ingest.url,
                NOVACRON_SQL_TOKEN=VIEWER_TOKEN,
                NOVACRON_CLICKHOUSE__PATH=str(ingest.workdir / "var" / "chdb"), COLUMNS="400")
    assert shown.returncode == 0, shown.stderr
    print(shown.stdout)
    for kind in ("Decision", "PolicyVerdict", "Approval", "Action", "Outcome", "Insight"):
        assert kind in shown.stdout, kind

    # forged proposals: refused with a reason, nothing committed
    before = commits(repo)
    other_repo = Decision(resource_id=SERVICE, decision_type="run_runbook", params={
        "runbook": "gitops-revert", "commit": deployed, "repository": "prod"})
    a_ref = Decision(resource_id=SERVICE, decision_type="run_runbook", params={
        "runbook": "gitops-revert", "commit": "HEAD~1"})
    unknown = Decision(resource_id=SERVICE, decision_type="run_runbook", confidence=1.0,
                       params={"runbook": "gitops-revert", "commit": "deadbeef00"})
    send(kafka_cfg, other_repo, a_ref, unknown)
    seen = verdicts(ingest, other_repo, a_ref, unknown)
    assert seen[other_repo.event_id]["outcome"] == "deny"
    assert "parameter repository must be one of ['config']" in " ".join(
        seen[other_repo.event_id]["reasons"])
    assert seen[a_ref.event_id]["outcome"] == "deny"
    assert "parameter commit does not match the pattern" in " ".join(
        seen[a_ref.event_id]["reasons"])
    assert seen[unknown.event_id]["outcome"] == "needs_approval"  # the proposer did not ask
    approve(kafka_cfg, ingest, unknown.event_id)
    refused = final_outcome(ingest, f"correlation_id = '{unknown.correlation_id}'")
    assert refused["status"] == "failed"
    assert "commit deadbeef00 is unknown in repository config" in str(refused["error"])
    assert commits(repo) == before
