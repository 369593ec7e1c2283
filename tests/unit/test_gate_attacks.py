"""Issue 11, finding 1, attack by attack: the gate approves exactly what runs.

Each decision below got through on main. Here it is refused with the reason in the verdict, and
nothing reaches an Action; the redirection attacks run end to end (gate, then executor) against
a local HTTP listener that must receive nothing.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from agents.compliance import ComplianceChecker, ComplianceConfig
from agents.decision import DecisionEngine
from agents.drift import DriftConfig, DriftDetector, desired_state
from agents.executor import Executor, ExecutorConfig, InMemoryJournal
from agents.gate import GateConfig, GateResult, PolicyGate
from agents.optimizer import decision_params
from models.recommend import Recommendation
from policies.engine import RegoEngine, StaticSource
from policies.result import EvalResult
from policies.source import load_directory
from runbooks.interpolate import StaticSecrets
from runbooks.loader import Library
from runbooks.resolve import DEFAULT_RUNBOOKS, Resolver
from schemas import Action, ConfigChange, Decision, Event, Insight, Outcome
from tests.unit.test_decision import FixedQ, _sample
from tests.unit.test_runbooks_support import argo_app, book, local_server

POLICY_DIR = Path(__file__).resolve().parents[2] / "policies" / "rego"
T0 = datetime(2026, 11, 2, 12, 0, tzinfo=UTC)
ENGINE = RegoEngine(StaticSource(load_directory(POLICY_DIR)))
STAGING = {"resource": {"environment": "staging", "active_vms": 3, "cost_per_hour": 3}}
LIBRARY = Library()


def gate(library: Library | None = None, runbooks: dict[str, str] | None = None) -> PolicyGate:
    lib = library or LIBRARY
    return PolicyGate(ENGINE, GateConfig(), Resolver(lib.get, runbooks))


def decide(g: PolicyGate, kind: str, params: dict[str, Any], ctx: dict[str, Any] | None = None,
           **fields: Any) -> GateResult:
    d = Decision(resource_id="web", decision_type=kind, params=params, confidence=0.9, **fields)
    return g.evaluate(d, ctx if ctx is not None else STAGING, now=T0)


def denied(res: GateResult, *words: str) -> str:
    assert res.verdict.outcome == "deny" and not res.verdict.allowed, res.verdict
    assert res.action is None and res.approval is None
    reasons = " | ".join(res.verdict.reasons)
    for word in words:
        assert word in reasons
    return reasons


def in_incident(g: PolicyGate) -> PolicyGate:
    g.observe_insight(Insight(resource_id="web", kind="anomaly", score=0.97, event_time=T0))
    return g


# --- the runbook is configuration ------------------------------------------------------------
def test_argocd_redirect_through_apply_recommendation_is_denied() -> None:
    res = decide(gate(), "apply_recommendation",
                 {"runbook": "argocd-sync", "argocd_server": "http://127.0.0.1:9/"})
    denied(res, "apply_recommendation runs runbook apply-recommendation (configuration)",
           "'argocd-sync' is refused")


def test_argocd_server_is_never_an_event_parameter() -> None:
    res = decide(gate(), "run_runbook",
                 {"runbook": "argocd-sync", "argocd_server": "http://127.0.0.1:9/"})
    denied(res, "argocd_server is of kind endpoint", "never from events")


def test_notify_webhook_redirect_is_denied() -> None:
    denied(decide(gate(), "run_runbook", {"runbook": "notify",
                                          "notify_webhook": "http://127.0.0.1:9/"}),
           "notify_webhook is of kind webhook")
    denied(decide(gate(), "apply_recommendation", {"notify_webhook": "http://127.0.0.1:9/"}),
           "no parameter 'notify_webhook'")


def test_the_config_repository_is_never_an_event_parameter() -> None:
    for kind in ("scale_up", "revert_drift", "enable_feature", "remediate_compliance"):
        denied(decide(gate(), kind, {"config_repo": "http://127.0.0.1:9/evil.git"}),
               "config_repo is of kind endpoint")
    denied(decide(gate(), "scale_up", {"config_branch": "attacker"}),
           "config_branch is not overridable")


def test_scale_up_carrying_the_scale_down_runbook_is_denied_in_an_incident() -> None:
    g = in_incident(gate())
    res = decide(g, "scale_up", {"runbook": "scale-down"})
    denied(res, "scale_up runs runbook scale-up", "'scale-down' is refused")
    assert decide(g, "scale_down", {}).verdict.reasons == [
        "novacron.safety.actions: no scale_down of web during an open incident"]


def test_a_scale_down_effect_is_denied_whatever_action_type_carries_it() -> None:
    # even if an operator maps scale_up to a shrinking runbook, the policy sees what runs
    g = in_incident(gate(runbooks={**DEFAULT_RUNBOOKS, "scale_up": "scale-down"}))
    res = decide(g, "scale_up", {"delta": 5})
    denied(res, "no scale_down of web during an open incident")
    assert res.verdict.policy_versions  # decided by the policies, not by resolution


def selectable_library(**books: dict[str, Any]) -> Library:
    lib = Library()
    for rid, meta in books.items():
        lib.add(book([{"id": "x", "action_type": "noop"}], id=rid,
                     metadata={"id": rid, "selectable": True, **meta},
                     parameters={"delta": {"type": "integer", "default": 1,
                                           "overridable": True}}))
    return lib


def test_migrations_limit_applies_to_the_runbooks_effect() -> None:
    g = gate(selectable_library(mover={"implements": ["migrate_vm"]}))
    denied(decide(g, "rebalance_load", {"runbook": "migrate-vm"}), "rebalance_load runs runbook")
    ctx = {**STAGING, "max_migrations_per_hour": 2}
    first = [decide(g, kind, params, ctx).verdict.outcome
             for kind, params in [("migrate_vm", {}), ("run_runbook", {"runbook": "mover"})]]
    assert first == ["allow", "allow"]  # both count: the mover migrates
    third = decide(g, "run_runbook", {"runbook": "mover"}, ctx)
    denied(third, "2 migrations of web in the last hour (limit 2)")


def test_quota_applies_to_the_runbooks_effect_and_its_bounds() -> None:
    g = gate(selectable_library(grow={"implements": ["scale_up"]}))
    denied(decide(g, "rebalance_load", {"runbook": "scale-up", "delta": 1000}),
           "rebalance_load runs runbook rebalance")
    denied(decide(g, "scale_up", {"delta": 1000}), "delta must be at most 100")
    res = decide(g, "run_runbook", {"runbook": "grow", "delta": 60})  # no bound in its schema
    denied(res, "novacron.resource.quota: scale_up to 63 VMs exceeds the quota of 50")
    assert decide(g, "scale_up", {"delta": 2}).verdict.outcome == "allow"


@pytest.mark.parametrize("delta", ["1000", "2", True, None, [1], {"n": 1}])
def test_a_quota_check_cannot_be_passed_by_a_non_integer(delta: Any) -> None:
    denied(decide(gate(), "scale_up", {"delta": delta}), "parameter delta must")


# --- what policies see and what the action carries --------------------------------------------
def test_policies_see_the_resolved_action() -> None:
    g = gate()
    d = Decision(resource_id="web", decision_type="migrate_vm",
                 params={"target_region": "eu-west-1"})
    value = g.build_input(d, {"params": {"forged": True}}, T0)
    lib = Library()
    assert value["runbook"] == {
        "id": "migrate-vm", "hash": lib.get("migrate-vm").content_hash,
        "implements": ["migrate_vm"], "selectable": False,
        "parameters": value["runbook"]["parameters"]}
    assert value["runbook"]["parameters"]["target_latency_ms"]["type"] == "number"
    assert value["context"]["params"] == {  # typed, after defaults; the host cannot replace it
        "target_host": "auto", "source_host": "current", "target_region": "eu-west-1",
        "target_latency_ms": None, "config_branch": "main"}
    assert "config_repo" not in value["context"]["params"]  # endpoints: schema only, no value
    assert value["runbook"]["parameters"]["config_repo"]["kind"] == "endpoint"


def test_the_action_carries_runbook_hash_and_variables_and_the_executor_runs_them(
    tmp_path: Path
) -> None:
    import asyncio

    from tests.unit.effector_support import bare_repo, read

    remote = bare_repo(tmp_path, {"services/web.yaml": {"service": "web", "replicas": 2}})
    res = decide(gate(), "scale_up", {"delta": 4})
    action = res.action
    assert action is not None and action.runbook == "scale-up"
    assert action.runbook_hash == Library().get("scale-up").content_hash
    assert action.params == {"delta": 4, "max_replicas": 20, "config_branch": "main"}
    events: list[Event] = []
    ex = Executor(ExecutorConfig(defaults={"config_repo": str(remote)}),
                  journal=InMemoryJournal(), emit=events.append)
    assert asyncio.run(ex.handle(action)).ok
    assert read(remote, "services/web.yaml")["replicas"] == 6


def test_any_failure_in_evaluation_is_an_error_verdict() -> None:
    class Broken:
        def evaluate(self, value: Any, **_: Any) -> EvalResult:
            raise RuntimeError("engine exploded")

    g = PolicyGate(Broken(), GateConfig(), Resolver(Library().get))  # type: ignore[arg-type]
    res = g.evaluate(Decision(resource_id="web", decision_type="scale_up"), now=T0)
    assert res.verdict.outcome == "error" and res.action is None
    assert "policy evaluation failed, failing closed: RuntimeError: engine exploded" in (
        res.verdict.reasons[0])

    def lookup(rid: str) -> Any:
        raise OSError("disk gone")

    g = PolicyGate(ENGINE, GateConfig(), Resolver(lookup))
    res = g.evaluate(Decision(resource_id="web", decision_type="scale_up"), now=T0)
    assert res.verdict.outcome == "error" and "runbook resolution failed" in res.verdict.reasons[0]


def test_deep_params_get_a_verdict() -> None:
    deep: Any = {}
    for _ in range(300):
        deep = {"x": deep}
    res = decide(gate(), "revert_drift", {"baseline_config": deep})
    assert res.verdict.outcome == "deny" and "baseline_config is nested deeper than 64" in (
        res.verdict.reasons[0])


# --- the proposers still produce decisions the resolution accepts -----------------------------
def proposals() -> list[Decision]:
    out: list[Decision] = []
    for kind in ("scale_up", "scale_down", "migrate_vm", "rebalance_load", "adjust_policy",
                 "enable_feature", "disable_feature", "no_action"):
        engine = DecisionEngine(policy=FixedQ(kind, 100.0))
        engine.observe(_sample())
        d = engine.decide("svc-0", T0)
        if d is not None and d.decision_type == kind:
            out.append(d)
    det = DriftDetector(DriftConfig(accept_sources=frozenset({"terraform"})), clock=lambda: T0)
    vm = {f"f{i:02d}": i for i in range(20)}
    det.on_baseline(desired_state("vm-1", "novacron_vm", vm, origin="git", revision="r1"))
    for source, config in (("console", vm | {"f00": -1}), ("terraform", vm | {"f01": -1})):
        change = ConfigChange(resource_id="vm-1", resource_type="novacron_vm", config=config,
                              change_source=source)
        out += [e for e in det.on_config(change) if isinstance(e, Decision)]
    checker = ComplianceChecker(ComplianceConfig())
    for result in checker.on_config(ConfigChange(
            resource_id="vm-2", resource_type="novacron_vm", change_source="api",
            config={"monitoring": False, "disk_encrypted": False, "owner": "x"})):
        decision = checker.remediation(result)
        if decision is not None:
            out.append(decision)
    for rec in (Recommendation("rightsize_down", "cpu_usage", 65, 40, 0.9, ["x"], "scale_down",
                               "low", {"delta_vms": -3.0, "cost_per_hour_saved": 1.2}),
                Recommendation("rightsize_up", "cpu_usage", 65, 20, 0.9, ["x"], "scale_up",
                               "high", {"delta_vms": 2.0}),
                Recommendation("consolidate", "cpu_usage", 5, 50, 0.9, ["x"], "migrate_vm",
                               "idle", {"from_vms": 2, "to_vms": 1}),
                Recommendation("memory_headroom", "memory_usage", 75, 10, 0.9, ["more"],
                               "apply_recommendation", "mem", {"memory_increase_pct": 10})):
        out.append(Decision(resource_id="svc-1", decision_type=rec.decision_type,
                            origin="optimizer", params=decision_params(rec)))
    return out


def test_every_proposer_produces_decisions_the_resolution_accepts() -> None:
    found = proposals()
    kinds = {d.decision_type for d in found}
    assert {"scale_up", "scale_down", "migrate_vm", "revert_drift", "accept_drift",
            "remediate_compliance", "apply_recommendation"} <= kinds
    resolver = Resolver(Library().get)
    for d in found:
        resolved = resolver.resolve(d.decision_type, d.params)  # raises if refused
        res = gate().evaluate(d, STAGING, now=T0)
        assert not any(r.startswith("runbook:") for r in res.verdict.reasons), (d, res.verdict)
        assert resolved.runbook_id is None or resolved.runbook_id == DEFAULT_RUNBOOKS.get(
            d.decision_type)


# --- end to end against a listener that must receive nothing ----------------------------------
async def run_through(g: PolicyGate, ex: Executor, decisions: list[Decision]) -> list[Event]:
    events: list[Event] = []
    for d in decisions:
        res = g.evaluate(d, STAGING, now=T0 + timedelta(seconds=1))
        events.extend(res.events)
        if res.action is not None:
            await ex.handle(res.action)
    return events


async def test_redirection_attacks_end_to_end_reach_nothing() -> None:
    with local_server() as (evil, seen_by_attacker), local_server() as (argo, seen_by_argo):
        seen_by_argo.apps["web"] = argo_app("web")
        seen_by_argo.token = "argo-secret-token"
        outcomes: list[Event] = []
        ex = Executor(ExecutorConfig(defaults={"argocd_server": argo,
                                               "notify_webhook": f"{argo}/hook"}),
                      journal=InMemoryJournal(), emit=outcomes.append,
                      secrets=StaticSecrets({"ARGOCD_TOKEN": "argo-secret-token"}),
                      http=httpx.AsyncClient())
        attacks = [
            Decision(resource_id="web", decision_type="apply_recommendation",
                     params={"runbook": "argocd-sync", "argocd_server": evil + "/"}),
            Decision(resource_id="web", decision_type="run_runbook",
                     params={"runbook": "argocd-sync", "argocd_server": evil + "/"}),
            Decision(resource_id="web", decision_type="apply_recommendation",
                     params={"notify_webhook": evil + "/hook"}),
            Decision(resource_id="web", decision_type="run_runbook",
                     params={"runbook": "notify", "notify_webhook": evil + "/hook"}),
        ]
        events = await run_through(gate(), ex, attacks)
        assert [e.outcome for e in events if e.event_type == "PolicyVerdict"] == ["deny"] * 4
        assert not [e for e in events if isinstance(e, Action)]
        # the same payloads forged straight onto the actions topic, past the gate
        lib = Library()
        for rid, var, value in (("argocd-sync", "argocd_server", evil + "/"),
                                ("notify", "notify_webhook", evil + "/hook")):
            book_ = lib.get(rid)
            honest = Resolver(lib.get).resolve("run_runbook", {"runbook": rid}).variables
            await ex.handle(Action(
                action_id=f"forged-{rid}", resource_id="web", action_type="run_runbook",
                runbook=rid, runbook_hash=book_.content_hash, params={**honest, var: value}))
        rejected = [o for o in outcomes if isinstance(o, Outcome) and o.status == "failed"]
        assert [o.error for o in rejected] == [
            "rejected: runbook argocd-sync: variables differ from what resolution gives here "
            "(argocd_server)",
            "rejected: runbook notify: variables differ from what resolution gives here "
            "(notify_webhook)"]
        # the honest sync reaches the configured ArgoCD, with the token: the listener works
        await run_through(gate(), ex, [Decision(resource_id="web", decision_type="run_runbook",
                                                params={"runbook": "argocd-sync"})])
        await ex.aclose()
        assert seen_by_attacker.requests == []
        synced = [r for r in seen_by_argo.requests if r.path.endswith("/web/sync")]
        assert len(synced) == 1 and synced[0].headers["Authorization"] == (
            "Bearer argo-secret-token")
