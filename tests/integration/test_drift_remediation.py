"""Issue 6 on a real broker: baseline from a git folder → drifted config → CRITICAL finding in
ClickHouse → remediation waits for approval → approved with the CLI → `revert_drift` acts."""

from __future__ import annotations

import subprocess
from pathlib import Path

import orjson
import pytest
import yaml

from schemas import ConfigChange
from tests.integration.conftest import wait_until
from tests.integration.test_gate_approvals import cli, rows, send

pytestmark = pytest.mark.kafka

BASELINE = {
    "name": "web",
    "vpc_id": "vpc-1",
    "ingress": [
        {"from_port": 443, "to_port": 443, "protocol": "tcp", "cidr_blocks": ["10.0.0.0/8"]},
        {"from_port": 22, "to_port": 22, "protocol": "tcp", "cidr_blocks": ["10.1.0.0/16"]},
    ],
    "tags": {"environment": "production", "team": "web"},
}


def git_repo(root: Path) -> str:
    """A real repository with one committed baseline; returns the commit id."""
    folder = root / "baselines"
    folder.mkdir(parents=True)
    doc = {"resource_id": "aws_security_group.web", "resource_type": "aws_security_group",
           "config": BASELINE}
    (folder / "web.yaml").write_text(yaml.safe_dump(doc))
    (root / "README.md").write_text("not a baseline\n")

    def git(*args: str) -> str:
        return subprocess.run(["git", "-c", "user.name=ci", "-c", "user.email=ci@example.com",
                               "-c", "init.defaultBranch=main", *args], cwd=root, check=True,
                              capture_output=True, text=True).stdout.strip()

    git("init", "-q")
    git("add", ".")
    git("commit", "-q", "-m", "baseline of the web security group")
    return git("rev-parse", "HEAD")


def test_critical_drift_waits_for_approval_then_reverts(worker_factory, kafka_cfg, tmp_path
                                                         ) -> None:  # type: ignore[no-untyped-def]
    ingest = worker_factory("ingest")
    worker_factory("govern")
    commit = git_repo(tmp_path / "repo")
    synced = cli(kafka_cfg, "baseline", "sync", "--git", str(tmp_path / "repo"))
    assert synced.returncode == 0, synced.stdout + synced.stderr

    # someone opens SSH to the world in the console: a security path, so CRITICAL
    drifted = {**BASELINE, "ingress": [BASELINE["ingress"][0], {**BASELINE["ingress"][1],
                                                                "cidr_blocks": ["0.0.0.0/0"]}],
               "arn": "arn:aws:ec2:eu-west-1:1:security-group/sg-1"}  # computed: ignored
    change = ConfigChange(resource_id="aws_security_group.web", resource_type="aws_security_group",
                          provider="aws", change_source="console", actor="mallory",
                          config=drifted)
    send(kafka_cfg, change)

    where = f"correlation_id = '{change.event_id}'"
    finding = wait_until(lambda: rows(ingest, "drift_findings", where), timeout=60,
                         what="the drift finding")
    assert len(finding) == 1
    assert finding[0]["severity"] == "CRITICAL"
    assert finding[0]["status"] == "open"
    # ingress is a set: the edited rule is one removed and one added element; the computed
    # `arn` is ignored
    assert set(finding[0]["changed_fields"]) == {"/ingress/1"}
    assert finding[0]["baseline_revision"] == commit

    decision = wait_until(lambda: rows(ingest, "decisions", where), timeout=30,
                          what="the remediation proposal")
    assert [(d["decision_type"], d["origin"], d["severity"]) for d in decision] == [
        ("revert_drift", "drift", "CRITICAL")]
    request = str(decision[0]["event_id"])
    pending = wait_until(lambda: rows(ingest, "approvals", f"request_id = '{request}'"),
                         timeout=30, what="the pending approval")
    assert [p["status"] for p in pending] == ["pending"]
    verdict = rows(ingest, "policy_verdicts", f"decision_id = '{request}'")
    assert [v["outcome"] for v in verdict] == ["needs_approval"]
    assert any("production" in r for r in verdict[0]["reasons"])  # facts from the git baseline
    assert ingest.scalar(f"SELECT count() FROM novacron.actions WHERE {where}") == 0

    done = cli(kafka_cfg, "approve", request, "--by", "alice", "--reason", "undo console edit")
    assert done.returncode == 0, done.stdout + done.stderr

    action = wait_until(lambda: rows(ingest, "actions", where), timeout=30, what="the revert")
    assert len(action) == 1
    assert action[0]["action_type"] == "revert_drift"
    assert action[0]["decision_id"] == request
    assert action[0]["runbook"] == "drift-revert"  # the configured runbook, with its hash
    assert len(action[0]["runbook_hash"]) == 64
    params = orjson.loads(action[0]["params"])
    assert params["finding_id"] == finding[0]["event_id"]
    assert params["baseline_config"] == BASELINE  # the runbook's authority
    assert {"op": "add", "path": "/ingress/1", "value": BASELINE["ingress"][1]} in params["revert"]
