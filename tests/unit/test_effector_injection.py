"""The injection corpus through the effector steps: hostile event data stays data.

Each payload travels as an Action's params (and as its resource id) through the Executor into a
git commit (file content, commit message, pointer, path), a Terraform variable and target, a
Kubernetes patch and object name, and AWS ids. After each run: the canary file does not exist,
the canary folder is intact, no child process is left, and the target holds the payload only as
a value where one was allowed (or nothing was written at all).
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agents.executor import Executor, ExecutorConfig, InMemoryJournal
from runbooks.effectors import AwsConfig, EffectorsConfig, KubernetesConfig, default_terraform
from runbooks.loader import Library
from runbooks.runtime import EngineConfig
from runbooks.steps.gitcli import trailers
from schemas import Event
from tests.fakes.kube_api import KubeState, deployment, kube_api
from tests.unit.effector_support import bare_repo, commits, read
from tests.unit.test_effector_terraform import MAIN_TF, state_ingress
from tests.unit.test_runbooks_injection import RAW, children, materialise, refused
from tests.unit.test_runbooks_support import approved, book

ANY = {"type": "string", "pattern": "(?s).*", "overridable": True}  # bounded by declaration only
IDS = [f"p{i}" for i in range(len(RAW))]


def effector_library() -> Library:
    lib = Library([])
    git = {"repo": "${config_repo}", "file": "services/web.yaml"}
    lib.add(book([{"id": "g", "action_type": "git", "critical": True, "parameters": {
        **git, "message": "note ${p}",
        "changes": [{"op": "set", "path": "/note", "value": "${p}"},
                    {"op": "set", "path": "/notes/${p}", "value": 1}]}}],
        id="inj-git", metadata={"id": "inj-git", "selectable": True},
        parameters={"p": ANY, "config_repo": {"type": "string", "kind": "endpoint"}}))
    lib.add(book([{"id": "g", "action_type": "git", "critical": True, "parameters": {
        "repo": "${config_repo}", "file": "resources/${resource_id}.yaml",
        "create": {"id": "${resource_id}"},
        "changes": [{"op": "set", "path": "/touched", "value": True}]}}],
        id="inj-git-path", metadata={"id": "inj-git-path", "selectable": True},
        parameters={"config_repo": {"type": "string", "kind": "endpoint"}}))
    lib.add(book([{"id": "k", "action_type": "kubernetes", "action": "patch", "critical": True,
                   "parameters": {"namespace": "shop", "name": "${resource_id}", "patch": {
                       "metadata": {"annotations": {"note": "${p}", "also": "x ${p}"}}}}}],
                 id="inj-k8s", metadata={"id": "inj-k8s", "selectable": True},
                 parameters={"p": ANY}))
    lib.add(book([{"id": "t", "action_type": "terraform", "critical": True, "parameters": {
        "dir": "${terraform_dir}", "targets": ["${resource_id}"],
        "variables": {"ingress": [{"from_port": 443, "to_port": 443, "protocol": "${p}",
                                   "cidr_blocks": ["10.0.0.0/8"]}]}}}],
        id="inj-tf", metadata={"id": "inj-tf", "selectable": True},
        parameters={"p": ANY, "terraform_dir": {"type": "string", "kind": "endpoint"}}))
    return lib


LIB = effector_library()


@pytest.fixture(scope="module")
def kube(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, KubeState]]:
    with kube_api(tmp_path_factory.mktemp("kube")) as found:
        yield found


def executor(events: list[Event], **defaults: str) -> Executor:
    engine = EngineConfig(effectors=EffectorsConfig(
        kubernetes=KubernetesConfig(kubeconfig=defaults.pop("kubeconfig", None)),
        aws=AwsConfig(endpoint_url="http://127.0.0.1:9")))
    return Executor(ExecutorConfig(engine=engine, defaults=defaults), journal=InMemoryJournal(),
                    emit=events.append, library=LIB)


def run(runbook: str, payload: str, resource_id: str = "web", **defaults: str) -> Any:
    events: list[Event] = []
    try:
        action = approved(LIB, "run_runbook", {"runbook": runbook, "p": payload}
                          if runbook not in ("inj-git-path",) else {"runbook": runbook},
                          resource_id=resource_id, action_id=f"a-{runbook}")
    except Exception:  # noqa: BLE001 - the Action model itself refuses it (too long, …)
        return None
    return asyncio.run(executor(events, **defaults).handle(action))


def inert(tmp_path: Path, canary: Path) -> None:
    assert not canary.exists() and (tmp_path / "keep" / "file").exists()
    assert children() == []


@pytest.fixture
def canary(tmp_path: Path) -> Path:
    (tmp_path / "keep").mkdir()
    (tmp_path / "keep" / "file").write_text("x")
    return tmp_path / "canary"


@pytest.mark.parametrize("raw", RAW, ids=IDS)
def test_git_commits_hold_the_payload_only_as_data(raw: str, tmp_path: Path,
                                                   canary: Path) -> None:
    payload = materialise(raw, canary)
    remote = bare_repo(tmp_path, {"services/web.yaml": {"service": "web", "replicas": 1}})
    result = run("inj-git", payload, config_repo=str(remote))
    log = commits(remote)
    if refused(payload) or result.status != "succeeded":
        assert len(log) == 1  # nothing committed
        assert refused(payload) or "not a plain token" in (result.error or "")
    else:
        doc = read(remote, "services/web.yaml")
        assert doc["note"] == payload and doc["notes"] == {payload: 1}
        subject, _, _ = log[0][1].partition("\n")
        assert subject == f"note {payload}"
        assert set(trailers(log[0][1])) == {"NovaCron-Action-Id", "NovaCron-Correlation-Id",
                                            "NovaCron-Step"}
    inert(tmp_path, canary)


@pytest.mark.parametrize("raw", RAW, ids=IDS)
def test_a_resource_id_never_leaves_the_repository(raw: str, tmp_path: Path,
                                                  canary: Path) -> None:
    payload = materialise(raw, canary)
    remote = bare_repo(tmp_path, {"services/web.yaml": {"service": "web"}})
    result = run("inj-git-path", "", resource_id=payload, config_repo=str(remote))
    if result is not None and result.status == "succeeded":
        [(sha, _), _] = commits(remote)
        from tests.unit.effector_support import git
        names = git("show", "--name-only", "--format=", sha, cwd=remote).split()
        assert names == [f"resources/{payload}.yaml"] and ".." not in payload
    else:
        assert len(commits(remote)) == 1
    inert(tmp_path, canary)


@pytest.mark.parametrize("raw", RAW, ids=IDS)
def test_kubernetes_patches_carry_the_payload_as_one_string(
        raw: str, tmp_path: Path, canary: Path, kube: tuple[Path, KubeState]) -> None:
    config, state = kube
    state.objects.clear()
    state.add(deployment("web", "shop"))
    before = len(state.requests)
    payload = materialise(raw, canary)
    result = run("inj-k8s", payload, kubeconfig=str(config))
    patches = [r for r in state.requests[before:] if r[0] == "PATCH"]
    if refused(payload):
        assert patches == []
    else:
        assert result.status == "succeeded", result.error
        [(_, path, _, body)] = patches
        assert path == "/apis/apps/v1/namespaces/shop/deployments/web"
        assert body == {"metadata": {"annotations": {"note": payload, "also": "x " + payload}}}
    before = len(state.requests)
    result = run("inj-k8s", "x", resource_id=payload, kubeconfig=str(config))
    if result is not None and payload != "web":  # rejected: validation (NUL bytes), no call
        assert result.status in ("failed", "rejected")
        assert [r for r in state.requests[before:] if r[0] == "PATCH"] == []
    inert(tmp_path, canary)


TERRAFORM = default_terraform()
needs_terraform = pytest.mark.skipif(
    shutil.which(TERRAFORM) is None and not Path(TERRAFORM).is_file(),
    reason="Terraform CLI not found: deploy/local/install.sh builds 1.5.7")


@needs_terraform
@pytest.mark.parametrize("raw", RAW, ids=IDS)
def test_terraform_variables_and_targets_stay_values(raw: str, tmp_path: Path,
                                                     canary: Path) -> None:
    payload = materialise(raw, canary)
    folder = tmp_path / "ws"
    folder.mkdir()
    (folder / "main.tf").write_text(MAIN_TF)
    result = run("inj-tf", payload, resource_id="terraform_data.web_sg",
                 terraform_dir=str(folder))
    if refused(payload):
        assert state_ingress(folder) is None
    else:
        assert result.status == "succeeded", result.error
        assert state_ingress(folder)[0][0]["protocol"] == payload
    result = run("inj-tf", "tcp", resource_id=payload, terraform_dir=str(folder))
    if result is not None:
        assert result.status == "rejected" or "not a Terraform resource address" in (
            result.error or "")
    assert not any(p.suffix == ".tf" and p.name != "main.tf" for p in folder.iterdir())
    inert(tmp_path, canary)


def test_aws_ids_from_events_are_checked_before_any_call(tmp_path: Path, canary: Path,
                                                         monkeypatch: pytest.MonkeyPatch
                                                         ) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    lib = Library()
    for raw in RAW:
        payload = materialise(raw, canary)
        for runbook, kind in (("aws-revoke-public-ssh", "security group id"),
                              ("aws-s3-encrypt", "bucket name")):
            events: list[Event] = []
            try:
                action = approved(lib, "run_runbook", {"runbook": runbook},
                                  resource_id=payload)
            except Exception:  # noqa: BLE001 - the Action model refuses it
                continue
            engine = EngineConfig(effectors=EffectorsConfig(
                aws=AwsConfig(endpoint_url="http://127.0.0.1:9", timeout=1)))
            ex = Executor(ExecutorConfig(engine=engine), journal=InMemoryJournal(),
                          emit=events.append)
            result = asyncio.run(ex.handle(action))
            assert result.status == "rejected" or f"is not a valid {kind}" in (
                result.error or "")
    inert(tmp_path, canary)
