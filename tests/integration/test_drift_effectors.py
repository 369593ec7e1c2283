"""Drift revert and accept_drift end to end on the real broker, through the executor and a real
git config repository that the simulated cluster reconciles from:

console drift → DriftFinding (open) → revert_drift / accept_drift decision → gate → action →
executor runs drift-revert (git commit of the baseline) / drift-accept (DesiredState origin
accepted-drift + git commit) → the cluster pulls the commit and reports its config → the drift
agent closes the finding (remediated / accepted) in ClickHouse; that config event shows no drift.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from agents.drift.listing import open_findings_sql
from agents.simulator.configs import DRIFTS
from agents.simulator.gitops import GitOpsReconciler, seed_repository
from agents.simulator.world import SimConfig, World
from runbooks.steps.gitcli import trailers
from schemas import ConfigChange, DesiredState
from tests.integration.conftest import wait_until
from tests.integration.test_gate_approvals import rows, send
from tests.unit.effector_support import commits, read

pytestmark = pytest.mark.kafka
VM = "svc-0/vm-0"
AUTO = json.dumps(["MEDIUM", "LOW", "INFO"])


def cluster(tmp_path: Path) -> tuple[World, Path, GitOpsReconciler, str]:
    world = World(SimConfig(seed=5, services=1, initial_vms=2, drift_probability=0.0,
                            violation_probability=0.0, config_every_ticks=0))
    repo = tmp_path / "config.git"
    head = seed_repository(world, repo)
    gitops = GitOpsReconciler(world, str(repo), tmp_path / "wc")
    gitops.reconcile()
    world.step()  # the creation events of the first tick are not what this test is about
    return world, repo, gitops, head


def workers(worker_factory: Any, repo: Path, **drift: str) -> Any:
    ingest = worker_factory("ingest")
    worker_factory("govern", NOVACRON_DRIFT__AUTO_REMEDIATE=AUTO, **drift)
    worker_factory("execute",
                   NOVACRON_EXECUTOR__DEFAULTS=json.dumps({"config_repo": str(repo)}))
    return ingest


def declare(kafka_cfg: Any, world: World, head: str) -> None:
    rtype, _ = world.book.current[VM]
    send(kafka_cfg, DesiredState(resource_id=VM, resource_type=rtype,
                                 config=world.book.baseline[VM], origin="git", revision=head))


def drift(world: World, source: str) -> ConfigChange:
    DRIFTS["hotfix_image"](world.book.current[VM][1])  # a hand edit in the console
    rtype, config = world.book.current[VM]
    return ConfigChange(resource_id=VM, resource_type=rtype, provider="novacron",
                        change_source=source, actor="ops@example.com", config=config)


def finished(ingest: Any, chain: str) -> dict[str, Any]:
    def final() -> list[dict[str, Any]]:
        return rows(ingest, "outcomes", f"correlation_id = '{chain}' AND scope = 'action' "
                                        "AND status NOT IN ('started')")
    return wait_until(final, timeout=120, what="the action's final outcome")[-1]


def reconciled_config(world: World, gitops: GitOpsReconciler) -> ConfigChange:
    done = gitops.reconcile()
    assert done.new_commit and f"{VM}: config" in done.applied, done
    [change] = [c for c in world.step().configs if c.resource_id == VM]
    assert change.change_source == "gitops"
    return change


def closing(ingest: Any, change: ConfigChange) -> list[dict[str, Any]]:
    return wait_until(lambda: rows(ingest, "drift_findings",
                                   f"correlation_id = '{change.event_id}'"),
                      timeout=60, what="the closing finding")


def still_open(ingest: Any) -> list[dict[str, Any]]:
    return [r for r in ingest.sql(open_findings_sql()) if r["resource_id"] == VM]


def test_drift_revert_commits_the_baseline_and_the_finding_closes(worker_factory, kafka_cfg,  # type: ignore[no-untyped-def]
                                                                  tmp_path: Path) -> None:
    world, repo, gitops, head = cluster(tmp_path)
    ingest = workers(worker_factory, repo)
    declare(kafka_cfg, world, head)
    change = drift(world, "console")
    send(kafka_cfg, change)
    chain = change.event_id
    [finding] = wait_until(lambda: rows(ingest, "drift_findings", f"correlation_id = '{chain}'"),
                           timeout=60, what="the drift finding")
    assert finding["status"] == "open" and finding["changed_fields"] == ["/image"]

    outcome = finished(ingest, chain)
    assert (outcome["status"], outcome["action_type"]) == ("succeeded", "revert_drift")
    assert not outcome["simulated"]
    [action] = rows(ingest, "actions", f"correlation_id = '{chain}'")
    assert action["runbook"] == "drift-revert"  # the configured id, end to end
    sha, message = commits(repo)[0]
    assert trailers(message)["NovaCron-Action-Id"] == action["action_id"]
    assert trailers(message)["NovaCron-Correlation-Id"] == chain
    assert read(repo, f"resources/{VM}.yaml")["config"] == world.book.baseline[VM]

    after = reconciled_config(world, gitops)
    assert world.book.current[VM][1] == world.book.baseline[VM]  # the live config is reverted
    send(kafka_cfg, after)
    [closed] = closing(ingest, after)
    assert (closed["status"], closed["drift_ratio"]) == ("remediated", 0.0)
    assert still_open(ingest) == []


def test_accept_drift_publishes_the_baseline_and_the_finding_closes(worker_factory, kafka_cfg,  # type: ignore[no-untyped-def]
                                                                   tmp_path: Path) -> None:
    world, repo, gitops, head = cluster(tmp_path)
    ingest = workers(worker_factory, repo,
                     NOVACRON_DRIFT__ACCEPT_SOURCES=json.dumps(["console"]))
    declare(kafka_cfg, world, head)
    change = drift(world, "console")
    drifted = dict(world.book.current[VM][1])
    send(kafka_cfg, change)
    chain = change.event_id
    outcome = finished(ingest, chain)
    assert (outcome["status"], outcome["action_type"]) == ("succeeded", "accept_drift"), outcome

    accepted = wait_until(lambda: rows(ingest, "desired_states",
                                       f"correlation_id = '{chain}'"),
                          timeout=60, what="the accepted baseline")
    assert [(a["origin"], a["revision"]) for a in accepted] == [
        ("accepted-drift", f"accepted:{chain}")]
    assert json.loads(accepted[0]["config"]) == drifted
    assert read(repo, f"resources/{VM}.yaml")["config"] == drifted  # git holds it too

    after = reconciled_config(world, gitops)
    assert world.book.current[VM][1] == drifted  # accepted: the cluster keeps it
    send(kafka_cfg, after)
    [closed] = closing(ingest, after)
    assert closed["status"] == "accepted"
    assert still_open(ingest) == []
