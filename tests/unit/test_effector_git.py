"""The git effector on real git with a bare repository as the remote, and the simulated world
reconciling from it (as ArgoCD would): commit with the ids, verified outcome, no second commit on
redelivery, a revert commit that rolls the change back, a remote that drops the push."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from agents.executor import Executor, ExecutorConfig, InMemoryJournal
from agents.simulator.gitops import GitOpsReconciler, seed_repository
from agents.simulator.world import SimConfig, World
from runbooks.loader import Library
from runbooks.steps.gitcli import trailers
from schemas import Event, Outcome
from tests.unit.effector_support import bare_repo, commits, git, read
from tests.unit.test_runbooks_support import approved, book


def quiet_world() -> World:
    return World(SimConfig(seed=3, services=1, initial_vms=2, drift_probability=0.0,
                           violation_probability=0.0, config_every_ticks=0))


def executor(remote: Path, events: list[Event], library: Library | None = None) -> Executor:
    config = ExecutorConfig(defaults={"config_repo": str(remote)})
    return Executor(config, journal=InMemoryJournal(), emit=events.append, library=library)


def finals(events: list[Event], scope: str = "action") -> list[Outcome]:
    return [e for e in events if isinstance(e, Outcome) and e.scope == scope
            and e.status not in ("started",)]


def test_an_approved_scale_up_commits_once_and_the_world_reconciles(tmp_path: Path) -> None:
    world = quiet_world()
    remote = tmp_path / "config.git"
    seed = seed_repository(world, remote)
    gitops = GitOpsReconciler(world, str(remote), tmp_path / "wc")
    gitops.reconcile()
    before = [world.step().metrics[0].active_vms for _ in range(3)]

    events: list[Event] = []
    action = approved(Library(), "scale_up", {"delta": 2}, resource_id="svc-0",
                      action_id="act-scale-1")
    result = asyncio.run(executor(remote, events).handle(action))
    assert result.status == "succeeded", result.error

    log = commits(remote)
    assert [sha for sha, _ in log][1:] == [seed]  # exactly one new commit
    keys = trailers(log[0][1])
    assert keys["NovaCron-Action-Id"] == "act-scale-1"
    assert keys["NovaCron-Correlation-Id"] == action.correlation_id
    assert log[0][1].startswith("scale svc-0 up by 2")
    assert read(remote, "services/svc-0.yaml")["replicas"] == 4
    [step] = [e for e in finals(events, "step") if e.step_id == "commit"]
    assert step.status == "succeeded" and step.output["verified"] is True
    assert step.output["observed"] == {"/replicas": 4} and step.output["commit"] == log[0][0]
    assert not step.simulated

    done = gitops.reconcile()  # the world pulls the commit
    assert done.new_commit and "svc-0: scale_up 2" in done.applied
    after = [world.step().metrics[0].active_vms for _ in range(4)]
    assert before == [2, 2, 2] and after[-1] == 4  # booted and serving

    # redelivery: the journal skips it; a fresh journal finds the commit by its trailers
    again = asyncio.run(executor(remote, events).handle(action))
    assert again.status == "succeeded"
    assert [e.output.get("already") for e in finals(events, "step")][-1] is True
    assert len(commits(remote)) == 2 and read(remote, "services/svc-0.yaml")["replicas"] == 4


def undo_book() -> Any:
    """Scale by git, then a critical step that fails: the saga reverts the commit."""
    return book([
        {"id": "commit", "action_type": "git", "action": "commit", "critical": True,
         "parameters": {"repo": "${config_repo}", "file": "services/${resource_id}.yaml",
                        "changes": [{"op": "add", "path": "/replicas", "value": 3}],
                        "message": "scale ${resource_id}"},
         "compensation": {"action_type": "git", "action": "revert",
                          "parameters": {"repo": "${config_repo}"}}},
        {"id": "check", "action_type": "http", "action": "http://127.0.0.1:9/unreachable",
         "critical": True, "dependencies": ["commit"]},
    ], id="scale-and-check", metadata={"id": "scale-and-check", "selectable": True},
        parameters={"config_repo": {"type": "string", "kind": "endpoint"}})


def test_a_failed_workflow_reverts_the_commit_and_the_world_follows(tmp_path: Path) -> None:
    world = quiet_world()
    remote = tmp_path / "config.git"
    seed_repository(world, remote)
    gitops = GitOpsReconciler(world, str(remote), tmp_path / "wc")
    lib = Library([])
    lib.add(undo_book())
    events: list[Event] = []
    action = approved(lib, "run_runbook", {"runbook": "scale-and-check"}, resource_id="svc-0")
    result = asyncio.run(executor(remote, events, lib).handle(action))
    assert result.status == "compensated" and result.compensated == ["commit"]

    (revert_sha, revert_msg), (made_sha, _), _ = commits(remote)
    assert trailers(revert_msg)["NovaCron-Reverts"] == made_sha
    assert trailers(revert_msg)["NovaCron-Action-Id"] == action.action_id
    assert read(remote, "services/svc-0.yaml")["replicas"] == 2
    assert read(remote, "services/svc-0.yaml", made_sha)["replicas"] == 5
    gitops.reconcile()
    assert len(world.service("svc-0").vms) == 2  # never scaled: the revert is what it sees


def test_a_remote_that_drops_the_push_gives_failed_with_what_was_seen(tmp_path: Path) -> None:
    remote = bare_repo(tmp_path, {"services/web-1.yaml": {"service": "web-1", "replicas": 2}})
    hook = remote / "hooks" / "post-receive"  # a server that silently resets the branch
    first = git("rev-parse", "main", cwd=remote).strip()
    hook.write_text(f"#!/bin/sh\ngit update-ref refs/heads/main {first}\n")
    hook.chmod(0o755)
    events: list[Event] = []
    result = asyncio.run(executor(remote, events).handle(
        approved(Library(), "scale_up", {"delta": 1})))
    assert result.status == "failed"
    [step] = [e for e in finals(events, "step") if e.step_id == "commit"]
    assert step.status == "failed" and "PostConditionFailed" in (step.error or "")
    assert "is not on main after the push" in (step.error or "")
    assert read(remote, "services/web-1.yaml")["replicas"] == 2


def test_concurrent_actions_both_land_on_a_moving_branch(tmp_path: Path) -> None:
    remote = bare_repo(tmp_path, {"services/web-1.yaml": {"service": "web-1", "replicas": 2}})
    events: list[Event] = []
    lib = Library()

    async def both() -> list[Any]:
        ex = executor(remote, events)
        return await asyncio.gather(*(ex.handle(approved(lib, "scale_up", {"delta": d},
                                                         action_id=f"a{d}"))
                                      for d in (1, 3)))

    assert [r.status for r in asyncio.run(both())] == ["succeeded", "succeeded"]
    assert read(remote, "services/web-1.yaml")["replicas"] == 6  # 2 + 1 + 3, none lost
    assert len(commits(remote)) == 3


@pytest.mark.parametrize(("action_type", "params", "path", "value"), [
    ("enable_feature", {"feature": "cache"}, "/features/cache", True),
    ("disable_feature", {"feature": "cache"}, "/features/cache", False),
    ("adjust_policy", {}, "/rate_limit/throttle", "act-1"),
    ("rebalance_load", {"max_moves": 3}, "/load_balancer/rebalance", "act-1"),
    ("scale_down", {"delta": 1}, "/replicas", 1),
    ("apply_recommendation", {"memory_increase_pct": 25.0}, "/resources/memory_mb", 2560),
])
def test_each_service_action_changes_its_config_value(tmp_path: Path, action_type: str,
                                                      params: dict[str, Any], path: str,
                                                      value: Any) -> None:
    world = quiet_world()
    remote = tmp_path / "config.git"
    seed_repository(world, remote)
    events: list[Event] = []
    result = asyncio.run(executor(remote, events).handle(
        approved(Library(), action_type, params, resource_id="svc-0")))
    assert result.status == "succeeded", result.error
    doc = read(remote, "services/svc-0.yaml")
    node: Any = doc
    for token in path.strip("/").split("/"):
        node = node[token]
    assert node == value


def test_a_value_that_would_break_the_bounds_fails_before_committing(tmp_path: Path) -> None:
    remote = bare_repo(tmp_path, {"services/web-1.yaml": {"service": "web-1", "replicas": 19}})
    events: list[Event] = []
    result = asyncio.run(executor(remote, events).handle(
        approved(Library(), "scale_up", {"delta": 5})))
    assert result.status == "failed"
    assert "would be 24, above the maximum 20" in (result.error or "")
    assert len(commits(remote)) == 1
