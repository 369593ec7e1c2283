"""The GitOps reconciler without git or Kafka: commits in, plans and rejections out."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from agents.gitops import GitopsConfig, GitopsReconciler, SyncPlan
from agents.shared import SharedState
from policies.compliance import load_library
from runbooks.loader import Library
from schemas import DesiredState, GitSync, PolicyVersion
from schemas.attestations import ComplianceAttestation
from schemas.codec import Codec
from schemas.gitops import GitCommit

CODEC = Codec()
POLICY = """# METADATA
# title: Quota
# custom:
#   policy_type: resource_allocation
#   enforcement: {mode}
package novacron.repo.quota

import rego.v1

default allow := true

deny contains msg if {{
	input.decision.params.delta > {limit}
	msg := "too many"
}}
"""
RUNBOOK = """metadata: {{id: repo-notify, name: Tell, selectable: true}}
parameters:
  message: {{type: string, default: "{text}", overridable: true}}
steps:
  - id: say
    action_type: noop
    action: say
"""
BASELINE = "resource_id: vm-1\nresource_type: novacron_vm\nconfig: {{cpu: {cpu}}}\n"
IGNORES = "ignores:\n  - path: /tags/build\n    reason: set by CI\n"
EXCEPTION = ("exceptions:\n  - control_id: {control}\n    resource_id: vm-1\n"
             "    reason: legacy box, replaced in Q3\n    expires_at: {expires}\n")


def _control() -> str:
    library = load_library(None, None, {})
    return next(c.id for c in library.controls.values() if c.kind == "automated")


EXPIRES = (datetime.now(UTC) + timedelta(days=30)).strftime("%Y-%m-%dT%H:%M:%SZ")


def files(*, cpu: int = 2, limit: int = 10, mode: str = "block", text: str = "hi",
          drop: tuple[str, ...] = (), expires: str = EXPIRES) -> dict[str, str]:
    out = {
        "policies/quota.rego": POLICY.format(mode=mode, limit=limit),
        "runbooks/notify.yaml": RUNBOOK.format(text=text),
        "baselines/vm.yaml": BASELINE.format(cpu=cpu),
        "ignores/ci.yaml": IGNORES,
        "exceptions/legacy.yaml": EXCEPTION.format(control=_control(), expires=expires),
        "README.md": "not configuration",
    }
    return {k: v for k, v in out.items() if not any(k.startswith(d) for d in drop)}


def commit(n: int, content: dict[str, str], problems: tuple[str, ...] = ()) -> GitCommit:
    return GitCommit(repo="config", commit=f"{n:040x}", author="Ada <ada@example.com>",
                     message=f"commit {n}", files=content, problems=list(problems))


@pytest.fixture
def shared() -> SharedState:
    return SharedState()


@pytest.fixture
def agent(shared: SharedState) -> GitopsReconciler:
    return GitopsReconciler(GitopsConfig(enabled=True, poll_seconds=30), shared,
                            controls=load_library(None, None, {}), library=Library())


def publish(shared: SharedState, plan: SyncPlan) -> None:
    """What the helper's transaction does, as the followers of the topics see it."""
    for r in plan.records:
        shared.apply(r.topic, r.key, r.value)
    assert plan.sync is not None
    for e in [*plan.events, plan.sync]:
        shared.apply(e.topic, e.key.encode(), CODEC.encode(e))


def apply(agent: GitopsReconciler, shared: SharedState, event: GitCommit) -> SyncPlan:
    assert agent.handle(event) == []
    [plan] = agent.take_plans()
    publish(shared, plan)
    return plan


def test_a_valid_commit_becomes_one_plan_with_every_object(agent, shared) -> None:
    plan = apply(agent, shared, commit(1, files()))
    assert plan.sync is not None and plan.sync.status == "applied"
    kinds = sorted(r.split("/")[0] for r in plan.sync.added)
    assert kinds == ["baseline", "exception", "ignore", "policy", "runbook"]
    assert {type(e) for e in plan.events} == {PolicyVersion, DesiredState, ComplianceAttestation}
    assert {r.topic for r in plan.records} == {"runbooks", "drift-ignores"}
    assert shared.policies.get("novacron.repo.quota").enforcement == "block"
    assert shared.runbooks.get("repo-notify") is not None
    assert shared.desired.get("vm-1").config == {"cpu": 2}  # type: ignore[union-attr]
    assert len(shared.ignores.rules) == 1
    assert shared.gitsync["config"].serving == f"{1:040x}"


def test_a_change_updates_only_what_changed(agent, shared) -> None:
    apply(agent, shared, commit(1, files()))
    plan = apply(agent, shared, commit(2, files(cpu=4, mode="warn")))
    assert plan.sync is not None
    assert sorted(plan.sync.changed) == ["baseline/vm-1", "policy/novacron.repo.quota"]
    assert plan.sync.added == [] and plan.sync.pruned == []
    policy = shared.policies.get("novacron.repo.quota")
    assert (policy.version, policy.enforcement, policy.change) == (2, "warn", "update")
    assert shared.desired.get("vm-1").config == {"cpu": 4}  # type: ignore[union-attr]


def test_deleted_files_prune_their_objects(agent, shared) -> None:
    apply(agent, shared, commit(1, files()))
    plan = apply(agent, shared, commit(2, files(drop=("policies", "runbooks", "baselines",
                                                     "ignores", "exceptions"))))
    assert plan.sync is not None and len(plan.sync.pruned) == 5
    assert shared.policies.active() == []
    assert shared.runbooks.get("repo-notify") is None
    assert shared.desired.get("vm-1") is None
    assert shared.ignores.rules == []
    assert shared.attestations.latest("acceptance", _control(), "vm-1").revoked  # type: ignore[union-attr]


@pytest.mark.parametrize(("content", "problems", "words"), [
    (files(limit=10) | {"runbooks/bad.yaml": "metadata: {id: bad}\nsteps: []\n"}, (),
     "runbooks/bad.yaml"),
    (files(), ("policies/quota_test.rego: novacron.repo.quota_test.test_x FAIL",), "FAIL"),
    (files() | {"baselines/other.yaml": BASELINE.format(cpu=1)}, (), "also declared"),
    (files() | {"ignores/bad.yaml": "ignores:\n  - path: '['\n"}, (), "invalid ignore rule"),
    (files() | {"exceptions/x.yaml": EXCEPTION.format(control="nope", expires=EXPIRES)}, (),
     "no automated control"),
    (files() | {"policies/x.rego": "no package here"}, (), "package"),
])
def test_a_bad_commit_is_rejected_and_the_last_good_one_keeps_serving(
        agent, shared, content, problems, words) -> None:
    apply(agent, shared, commit(1, files()))
    [alert] = agent.handle(commit(2, content, problems))
    assert isinstance(alert, GitSync) and alert.status == "rejected"
    assert any(words in r for r in alert.reasons), alert.reasons
    assert alert.serving == f"{1:040x}" and alert.manifest == shared.gitsync["config"].manifest
    assert agent.take_plans() == []
    shared.apply("gitops", b"config", CODEC.encode(alert))
    assert shared.policies.get("novacron.repo.quota").version == 1
    assert not agent.wants(f"{2:040x}")  # the rejected head is not read again
    assert agent.wants(f"{3:040x}")  # the next commit is
    assert agent.handle(commit(2, content, problems)) == []  # and never alerted twice


def test_an_unsigned_policy_is_rejected_when_signatures_are_required(agent, shared) -> None:
    shared.policies.config.require_signatures = True
    [alert] = agent.handle(commit(1, files()))
    assert isinstance(alert, GitSync) and alert.status == "rejected"
    assert any("unsigned policy refused" in r for r in alert.reasons)


def test_ids_are_stable_so_a_retried_plan_changes_nothing(shared) -> None:
    first = GitopsReconciler(GitopsConfig(), SharedState(), library=Library())
    second = GitopsReconciler(GitopsConfig(), SharedState(), library=Library())
    first.handle(commit(1, files()))
    second.handle(commit(1, files()))
    [a], [b] = first.take_plans(), second.take_plans()
    assert [e.event_id for e in a.events] == [e.event_id for e in b.events]
    assert a.sync is not None and b.sync is not None and a.sync.event_id == b.sync.event_id


def test_out_of_band_changes_are_healed_only_when_asked(agent, shared) -> None:
    apply(agent, shared, commit(1, files()))
    shared.observe(DesiredState(resource_id="vm-1", resource_type="novacron_vm",
                                config={"cpu": 64}))
    assert agent.wants(f"{1:040x}") is False  # same head, no self-heal: nothing to read
    agent.config = agent.config.model_copy(update={"self_heal": True})
    assert agent.wants(f"{1:040x}")
    plan = apply(agent, shared, commit(1, files()))
    assert plan.sync is not None and plan.sync.changed == ["baseline/vm-1"]
    assert shared.desired.get("vm-1").config == {"cpu": 2}  # type: ignore[union-attr]
    assert agent.handle(commit(1, files())) == [] and agent.take_plans() == []  # healthy now


def test_polls_are_requested_by_tick_and_by_the_webhook(agent) -> None:
    t0 = datetime(2030, 1, 1, tzinfo=UTC)
    agent.tick(t0)
    assert agent.poll_requested
    agent.poll_requested = False
    agent.tick(t0 + timedelta(seconds=10))
    assert not agent.poll_requested  # within poll_seconds
    agent.trigger()
    agent.tick(t0 + timedelta(seconds=11))
    assert agent.poll_requested


def test_a_failed_transaction_falls_back_to_what_served_before(agent, shared) -> None:
    apply(agent, shared, commit(1, files()))
    agent.handle(commit(2, files(cpu=8)))
    [plan] = agent.take_plans()
    assert agent.serving() is plan.sync
    agent.failed(plan)
    assert agent.serving() == shared.gitsync["config"] and agent.wants(f"{2:040x}")


def test_offered_commits_are_handled_at_the_next_tick(agent) -> None:
    agent.offer(commit(1, files(), ("policies/a_test.rego: x FAIL",)))
    [alert] = agent.tick(datetime(2030, 1, 1, tzinfo=UTC))
    assert isinstance(alert, GitSync) and alert.status == "rejected"
