"""The deploy watch: a deploy, then a breach inside its window, proposes one rollback on the
deploy's causal chain."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from agents.collectors.argocd import APP_TYPE, app_sample
from agents.gitops.config import DeployWatchConfig
from agents.gitops.rollback import DeployWatch
from agents.shared import SharedState
from runbooks.loader import Library
from runbooks.resolve import Resolver
from schemas import Decision, GitSync, Insight, MetricSample, Outcome

T0 = datetime(2030, 1, 1, tzinfo=UTC)
SHA = "c0ffee" + "0" * 34


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def sync(refs: list[str], status: str = "applied", minutes: float = 0) -> GitSync:
    return GitSync(repo="config", commit=SHA, status=status, serving=SHA, changed=refs,
                   event_time=at(minutes))  # type: ignore[arg-type]


def anomaly(rid: str, minutes: float, score: float = 0.95) -> Insight:
    return Insight(resource_id=rid, kind="anomaly", metric="network_latency_ms", score=score,
                   event_time=at(minutes))


def latency(rid: str, minutes: float, ms: float) -> MetricSample:
    return MetricSample(resource_id=rid, network_latency_ms=ms, event_time=at(minutes))


def watch(shared: SharedState | None = None, **config: object) -> DeployWatch:
    return DeployWatch(DeployWatchConfig(window_seconds=600, **config),  # type: ignore[arg-type]
                       shared or SharedState())


def test_a_breach_after_a_config_commit_proposes_its_revert_on_the_deploy_chain() -> None:
    shared = SharedState()
    deploy = sync(["baseline/svc-checkout"])
    shared.gitsync["config"] = deploy
    w = watch(shared)
    w.tick(at(1))
    observed = anomaly("svc-checkout", 3)
    link, decision = w.handle(observed)
    assert isinstance(link, Insight) and isinstance(decision, Decision)
    assert (link.correlation_id, link.causation_id) == (deploy.correlation_id, deploy.event_id)
    assert link.details["observed"] == observed.event_id and link.details["seconds_after"] == 180
    assert decision.correlation_id == deploy.correlation_id
    assert decision.causation_id == link.event_id
    assert (decision.decision_type, decision.origin, decision.requires_approval) == (
        "run_runbook", "gitops", True)
    assert decision.params == {"runbook": "gitops-revert", "commit": SHA, "repository": "config"}
    assert decision.resource_id == "svc-checkout"
    assert w.handle(anomaly("svc-checkout", 4)) == []  # one proposal per window


@pytest.mark.parametrize(("event", "why"), [
    (anomaly("svc-checkout", 11), "after the window"),
    (anomaly("svc-checkout", -1), "before the deploy"),
    (anomaly("svc-other", 3), "another resource"),
    (anomaly("svc-checkout", 3, score=0.2), "below min_anomaly_score"),
    (Insight(resource_id="svc-checkout", kind="forecast", event_time=at(3)), "not an anomaly"),
])
def test_what_is_not_blamed_on_the_deploy(event: Insight, why: str) -> None:
    shared = SharedState()
    shared.gitsync["config"] = sync(["baseline/svc-checkout"])
    w = watch(shared, min_anomaly_score=0.5)
    w.tick(at(1))
    assert w.handle(event) == [], why


def test_a_rejected_sync_deploys_nothing_and_old_syncs_are_not_reopened() -> None:
    shared = SharedState()
    shared.gitsync["config"] = sync(["baseline/svc-checkout"], status="rejected")
    w = watch(shared)
    w.tick(at(1))
    assert w.handle(anomaly("svc-checkout", 2)) == []
    shared.gitsync["config"] = sync(["baseline/svc-checkout"], minutes=0)
    w.tick(at(20))  # the sync is older than a window
    assert w.handle(anomaly("svc-checkout", 21)) == []


def test_a_policy_or_runbook_sync_watches_the_configured_resources() -> None:
    shared = SharedState()
    shared.gitsync["config"] = sync(["policy/novacron.team.limits"])
    w = watch(shared, repo_resources=["svc-a", "svc-b"])
    w.tick(at(1))
    assert w.handle(anomaly("svc-b", 2))[1].resource_id == "svc-b"  # type: ignore[attr-defined]


def test_an_argocd_deployment_of_an_app_rolls_that_app_back() -> None:
    w = watch(apps={"shop": ["svc-checkout"]})
    def app(*revisions: str) -> dict[str, object]:
        history = [{"id": i + 1, "revision": r} for i, r in enumerate(revisions)]
        return {"metadata": {"name": "shop"},
                "status": {"sync": {"status": "Synced", "revision": revisions[-1]},
                           "health": {"status": "Healthy"}, "history": history}}

    first, second = app("aaa"), app("aaa", "bbb")
    seen = app_sample(first).model_copy(update={"event_time": at(0)})
    assert seen.resource_type == APP_TYPE and seen.extra["history_id"] == 1.0
    assert w.handle(seen) == []  # first sight: no deploy
    assert w.handle(seen.model_copy(update={"event_time": at(1)})) == []  # unchanged
    deployed = app_sample(second).model_copy(update={"event_time": at(2)})
    assert w.handle(deployed) == []
    link, decision = w.handle(anomaly("svc-checkout", 4))
    assert isinstance(decision, Decision) and decision.resource_id == "shop"
    assert decision.params == {"runbook": "argocd-rollback"}
    assert link.correlation_id == deployed.correlation_id
    # the proposal resolves at the gate: a selectable runbook that acts on the application
    resolved = Resolver(Library().get).resolve(decision.decision_type, decision.params)
    assert resolved.runbook_id == "argocd-rollback"


def test_a_latency_slo_breach_needs_consecutive_slow_samples() -> None:
    shared = SharedState()
    shared.gitsync["config"] = sync(["baseline/svc"])
    w = watch(shared, latency_slo_ms=250, breach_samples=3)
    w.tick(at(0.5))
    assert w.handle(latency("svc", 1, 900)) == [] and w.handle(latency("svc", 2, 900)) == []
    assert w.handle(latency("svc", 3, 100)) == []  # a fast one resets the count
    assert w.handle(latency("svc", 4, 900)) == [] and w.handle(latency("svc", 5, 900)) == []
    link, decision = w.handle(latency("svc", 6, 900))
    assert link.details["breach"] == "latency_slo" and link.value == 900  # type: ignore[attr-defined]
    assert isinstance(decision, Decision)


def test_a_restored_watch_remembers_what_it_proposed() -> None:
    shared = SharedState()
    shared.gitsync["config"] = sync(["baseline/svc"])
    w = watch(shared)
    w.tick(at(1))
    assert w.handle(anomaly("svc", 2))
    blob = w.snapshot("svc")
    assert blob is not None
    again = watch(shared)
    again.restore("svc", blob)
    again.tick(at(3))  # the followed record is read again: the window is not opened twice
    assert again.handle(anomaly("svc", 4)) == []


def committed(rid: str = "svc-cart", minutes: float = 0, **change: object) -> Outcome:
    """The executor's step outcome of a verified git commit (what `run_git` reports)."""
    fields: dict[str, object] = {
        "source": "novacron.executor", "action_id": "act-9", "scope": "step",
        "step_id": "commit", "status": "succeeded", "resource_id": rid, "event_time": at(minutes),
        "output": {"effector": "git", "git_action": "commit", "verified": True, "commit": SHA,
                   "branch": "main", "file": f"services/{rid}.yaml"}}
    output = change.pop("output", None)
    if isinstance(output, dict):
        fields["output"] = {**fields["output"], **output}  # type: ignore[dict-item]
    return Outcome(**{**fields, **change})  # type: ignore[arg-type]


def test_a_verified_executor_commit_opens_a_window_on_the_actions_resource() -> None:
    w = watch()
    deploy = committed()
    assert w.handle(deploy) == []
    assert w.handle(committed()) == []  # the same commit again (a redelivered outcome)
    link, decision = w.handle(anomaly("svc-cart", 2))
    assert isinstance(link, Insight) and isinstance(decision, Decision)
    assert (link.correlation_id, link.causation_id) == (deploy.correlation_id, deploy.event_id)
    assert link.details["deploy_kind"] == "git" and link.details["target"] == SHA
    assert (decision.correlation_id, decision.causation_id) == (deploy.correlation_id,
                                                                link.event_id)
    assert decision.params == {"runbook": "gitops-revert", "commit": SHA, "repository": "config"}
    assert decision.requires_approval and decision.resource_id == "svc-cart"
    assert w.handle(anomaly("svc-cart", 3)) == []  # one proposal per window
    # the proposal resolves at the gate: the selectable revert runbook, with the commit
    resolved = Resolver(Library().get).resolve(decision.decision_type, decision.params)
    assert resolved.runbook_id == "gitops-revert"
    assert resolved.variables["commit"] == SHA and resolved.variables["repository"] == "config"


def test_the_repository_name_comes_from_configuration() -> None:
    w = watch(executor_repository="infra")
    w.handle(committed(output={"repository": "/srv/evil.git", "repo": "http://x.invalid"}))
    _, decision = w.handle(anomaly("svc-cart", 1))
    assert decision.params["repository"] == "infra"  # type: ignore[attr-defined]


@pytest.mark.parametrize(("outcome", "why"), [
    (committed(source="someone.else"), "not the executor"),
    (committed(scope="action", step_id=None), "the workflow, not the commit step"),
    (committed(status="failed"), "not succeeded"),
    (committed(simulated=True), "a simulated effect"),
    (committed(resource_id=""), "no resource"),
    (committed(output={"verified": False}), "not read back"),
    (committed(output={"effector": "http"}), "not a git step"),
    (committed(output={"git_action": "revert_commit"}), "a rollback is no deploy"),
    (committed(output={"unchanged": True}), "nothing was committed"),
    (committed(output={"commit": "HEAD~1"}), "not a commit id"),
    (committed(output={"commit": SHA[:12]}), "not a full commit id"),
])
def test_what_is_not_an_executor_deploy(outcome: Outcome, why: str) -> None:
    w = watch()
    assert w.handle(outcome) == []
    assert w.handle(anomaly("svc-cart", 1)) == [], why


def test_an_executor_commit_window_closes_and_survives_a_restart() -> None:
    w = watch()
    w.handle(committed(minutes=0))
    w.tick(at(11))
    assert w.handle(anomaly("svc-cart", 11)) == []  # the window (10 min) ran out
    w.handle(committed(rid="svc-pay", minutes=20, action_id="act-10"))
    blob = w.snapshot("svc-pay")
    assert blob is not None and w.state_key(committed(rid="svc-pay")) == "svc-pay"
    again = watch(executor_repository="config")
    again.restore("svc-pay", blob)
    _, decision = again.handle(anomaly("svc-pay", 25))
    assert decision.params == {"runbook": "gitops-revert", "commit": SHA,  # type: ignore[attr-defined]
                               "repository": "config"}


def test_only_an_input_that_can_change_the_watch_names_a_key() -> None:
    """The host saves the key an input names before committing it: a sample that changes
    nothing names none, so a watched service is not saved once per sample."""
    w = watch()
    assert w.state_key(latency("svc-cart", 0, 900)) is None  # nothing watched yet
    assert w.state_key(anomaly("svc-cart", 0)) is None
    assert w.state_key(committed()) == "svc-cart"  # opens a window
    # the executor's other records open nothing: its action outcome, a start, an unchanged file
    for other in (committed(scope="action", step_id=None), committed(status="started"),
                  committed(output={"unchanged": True}), committed(output={"effector": "http"})):
        assert w.state_key(other) is None
        assert w.handle(other) == [] and w.snapshot("svc-cart") is None
    w.handle(committed())
    before = w.snapshot("svc-cart")
    assert w.state_key(latency("svc-cart", 1, 900)) is None  # no latency SLO: no breach count
    assert w.handle(latency("svc-cart", 1, 900)) == [] and w.snapshot("svc-cart") == before
    assert w.state_key(anomaly("svc-cart", 1)) == "svc-cart"  # may propose in the open window
    assert w.state_key(anomaly("svc-other", 1)) is None
    slo = watch(latency_slo_ms=250)
    slo.handle(committed())
    assert slo.state_key(latency("svc-cart", 1, 900)) == "svc-cart"  # counts breaches
    assert slo.state_key(latency("svc-other", 1, 900)) is None
    app = app_sample({"metadata": {"name": "shop"}, "status": {"history": [
        {"id": 1, "revision": "aaa"}]}})
    assert w.state_key(app) == "shop"  # its status is remembered
