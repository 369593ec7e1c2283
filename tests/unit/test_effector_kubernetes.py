"""The kubernetes effector with the official client against a local server that follows the
Kubernetes API: scale subresource, rollout restart, strategic-merge patch, and the post-condition
path (a server that accepts the PATCH but changes nothing gives `failed`)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agents.executor import Executor, ExecutorConfig, InMemoryJournal
from runbooks.effectors import EffectorsConfig, KubernetesConfig
from runbooks.loader import Library
from runbooks.runtime import EngineConfig
from runbooks.steps.kubernetes import RESTARTED_AT
from schemas import Event, Outcome
from tests.fakes.kube_api import KubeState, deployment, kube_api
from tests.unit.test_runbooks_support import approved, book

K8S = {"scale_up": "k8s-scale-up", "scale_down": "k8s-scale-down"}


@pytest.fixture
def api(tmp_path: Path) -> Iterator[tuple[Path, KubeState]]:
    with kube_api(tmp_path) as (config, state):
        state.add(deployment("web", "shop", replicas=2))
        yield config, state


def executor(kubeconfig: Path, events: list[Event], library: Library | None = None) -> Executor:
    engine = EngineConfig(effectors=EffectorsConfig(
        kubernetes=KubernetesConfig(kubeconfig=kubeconfig)))
    config = ExecutorConfig(runbooks={**ExecutorConfig().runbooks, **K8S}, engine=engine,
                            defaults={"k8s_namespace": "shop"})
    return Executor(config, journal=InMemoryJournal(), emit=events.append, library=library)


def run(kubeconfig: Path, action_type: str, params: dict[str, Any],
        library: Library | None = None) -> tuple[Any, list[Event]]:
    events: list[Event] = []
    lib = library or Library()
    action = approved(lib, action_type, params, runbooks={**ExecutorConfig().runbooks, **K8S},
                      resource_id="web")
    return asyncio.run(executor(kubeconfig, events, lib).handle(action)), events


def step_outcome(events: list[Event]) -> Outcome:
    return [e for e in events if isinstance(e, Outcome) and e.scope == "step"
            and e.status in ("succeeded", "failed")][-1]


def test_scale_up_and_down_through_the_scale_subresource(api: tuple[Path, KubeState]) -> None:
    config, state = api
    result, events = run(config, "scale_up", {"delta": 3})
    assert result.status == "succeeded", result.error
    assert state.objects[("deployments", "shop", "web")]["spec"]["replicas"] == 5
    patches = [r for r in state.requests if r[0] == "PATCH"]
    assert patches == [("PATCH", "/apis/apps/v1/namespaces/shop/deployments/web/scale",
                        "application/merge-patch+json", {"spec": {"replicas": 5}})]
    out = step_outcome(events).output
    assert out["verified"] is True and out["observed"] == {"spec.replicas": 5}
    result, _ = run(config, "scale_down", {"delta": 4})
    assert result.status == "succeeded"
    assert state.objects[("deployments", "shop", "web")]["spec"]["replicas"] == 1
    result, _ = run(config, "scale_down", {"delta": 1})  # below min_replicas = 1
    assert result.status == "failed" and "outside [1" in (result.error or "")


def test_a_server_that_ignores_the_scale_gives_failed(api: tuple[Path, KubeState]) -> None:
    config, state = api
    state.ignore_writes = True
    result, events = run(config, "scale_up", {"delta": 1})
    assert result.status == "failed"
    step = step_outcome(events)
    assert step.status == "failed" and "PostConditionFailed" in (step.error or "")
    assert "spec.replicas is 2 after the patch, expected 3" in (step.error or "")


def test_rollout_restart_sets_the_pod_template_annotation(api: tuple[Path, KubeState]) -> None:
    config, state = api
    result, events = run(config, "run_runbook", {"runbook": "restart-service"})
    assert result.status == "succeeded", result.error
    live = state.objects[("deployments", "shop", "web")]
    stamp = live["spec"]["template"]["metadata"]["annotations"][RESTARTED_AT]
    assert step_outcome(events).output["restarted_at"] == stamp
    [patch] = [r for r in state.requests if r[0] == "PATCH"]
    assert patch[2] == "application/strategic-merge-patch+json"
    assert live["spec"]["template"]["spec"]["containers"] == [{"name": "app", "image": "app:1.0"}]
    state.ignore_writes = True
    result, _ = run(config, "run_runbook", {"runbook": "restart-service"})
    assert result.status == "failed" and "restartedAt" in (result.error or "")


def patch_book() -> Any:
    return book([{"id": "p", "action_type": "kubernetes", "action": "patch", "critical": True,
                  "parameters": {
        "namespace": "shop", "name": "${resource_id}",
        "patch": {"spec": {"template": {"metadata": {"labels": {"tier": "${tier}"}},
                                        "spec": {"containers": [
                                            {"name": "app", "image": "app:${version}"}]}}}}}}],
        id="k8s-patch", metadata={"id": "k8s-patch", "selectable": True},
        parameters={"tier": {"type": "string", "pattern": "^[a-z]{1,20}$", "overridable": True},
                    "version": {"type": "string", "pattern": "^[0-9.]{1,20}$",
                                "overridable": True}})


def test_strategic_merge_patch_from_typed_values(api: tuple[Path, KubeState]) -> None:
    config, state = api
    lib = Library([])
    lib.add(patch_book())
    result, _ = run(config, "run_runbook", {"runbook": "k8s-patch", "tier": "gold",
                                            "version": "2.1"}, lib)
    assert result.status == "succeeded", result.error
    live = state.objects[("deployments", "shop", "web")]
    assert live["spec"]["template"]["metadata"]["labels"] == {"app": "web", "tier": "gold"}
    assert live["spec"]["template"]["spec"]["containers"] == [{"name": "app", "image": "app:2.1"}]
    state.ignore_writes = True
    result, _ = run(config, "run_runbook", {"runbook": "k8s-patch", "tier": "iron",
                                            "version": "3"}, lib)
    assert result.status == "failed" and "does not hold the patch" in (result.error or "")


def test_an_object_parameter_can_never_be_merged_into_a_patch() -> None:
    from runbooks.model import ValidationError

    with pytest.raises(ValidationError, match="object is never merged into a kubernetes"):
        book([{"id": "p", "action_type": "kubernetes", "action": "patch",
               "parameters": {"name": "x", "patch": {"spec": "${spec}"}}}],
             id="bad", parameters={"spec": {"type": "object", "overridable": True}})
    with pytest.raises(ValidationError, match="a string needs a pattern or an enum"):
        book([{"id": "p", "action_type": "kubernetes", "action": "patch",
               "parameters": {"name": "x", "patch": {"metadata": {"labels": {"a": "${v}"}}}}}],
             id="bad", parameters={"v": {"type": "string", "overridable": True}})


def test_bad_names_and_missing_objects_fail_without_a_write(api: tuple[Path, KubeState]
                                                            ) -> None:
    config, state = api
    events: list[Event] = []
    lib = Library()
    runbooks = {**ExecutorConfig().runbooks, **K8S}
    for rid in ("Web_1", "../web", "ghost"):
        action = approved(lib, "scale_up", {"delta": 1}, runbooks=runbooks, resource_id=rid,
                          action_id=f"a-{rid}")
        result = asyncio.run(executor(config, events, lib).handle(action))
        assert result.status == "failed"
    assert not [r for r in state.requests if r[0] == "PATCH"]
    errors = [e.error for e in events if isinstance(e, Outcome) and e.scope == "step"
              and e.status == "failed"]
    assert any("is not a Kubernetes object name" in (x or "") for x in errors)
    assert any('deployments.apps \\"ghost\\" not found' in (x or "")
               or 'deployments.apps "ghost" not found' in (x or "") for x in errors)
