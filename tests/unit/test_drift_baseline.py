"""Baselines: the store, Terraform JSON import (two Terraform versions) and git folder sync."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from agents.drift import (
    BaselineStore,
    DriftDetector,
    baselines_from_folder,
    desired_state,
    load_terraform,
    sync_git,
    terraform_resources,
)
from agents.drift.terraform import detect_format
from schemas import ConfigChange
from schemas.errors import NonRetryableError, RejectedError

FIXTURES = Path(__file__).parents[1] / "fixtures" / "terraform"
VERSIONS = ["v1.0", "v1.9"]
STATE_ADDRESSES = {
    "aws_vpc.main",
    'module.net.aws_subnet.private["a"]',
    'module.net.aws_subnet.private["b"]',
    "module.net.aws_security_group.web",
    "aws_instance.app[0]",
    "aws_instance.app[1]",
    "aws_s3_bucket.logs",
    "module.net.module.flow.aws_flow_log.this",
}


# --- store -----------------------------------------------------------------------------------


def test_store_keeps_latest_and_withdraws_deleted() -> None:
    store = BaselineStore()
    store.apply(desired_state("a", "t", {"v": 1}))
    store.apply(desired_state("a", "t", {"v": 2}))
    store.apply(desired_state("b", "t", {"v": 3}))
    assert store.get("a").config == {"v": 2} and len(store) == 2  # type: ignore[union-attr]
    store.apply(desired_state("b", "t", {}, deleted=True))
    assert "b" not in store and store.get("b") is None
    copy = BaselineStore()
    copy.restore(store.snapshot())
    assert [s.config for s in copy] == [{"v": 2}]


# --- Terraform -------------------------------------------------------------------------------


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("name", ["terraform.tfstate", "show-state.json"])
def test_state_import_keys_resources_by_address(version: str, name: str) -> None:
    events = load_terraform(FIXTURES / version / name)
    by_address = {e.resource_id: e for e in events}
    assert set(by_address) == STATE_ADDRESSES  # data sources skipped, child modules included
    sg = by_address["module.net.aws_security_group.web"]
    assert sg.resource_type == "aws_security_group" and sg.origin == "terraform"
    assert {r["from_port"] for r in sg.config["ingress"]} == {443, 22}
    assert by_address["aws_instance.app[1]"].config["instance_type"] == "t3.medium"
    assert all(e.revision for e in events)


@pytest.mark.parametrize("version", VERSIONS)
def test_raw_state_and_show_json_give_the_same_baselines(version: str) -> None:
    raw = {
        e.resource_id: e.config for e in load_terraform(FIXTURES / version / "terraform.tfstate")
    }
    shown = {
        e.resource_id: e.config for e in load_terraform(FIXTURES / version / "show-state.json")
    }
    assert raw == shown


def test_state_revision_is_lineage_and_serial() -> None:
    events = load_terraform(FIXTURES / "v1.9" / "terraform.tfstate")
    assert events[0].revision == "8c2f6a0e-3b1d-4f5e-9a7c-1d2e3f4a5b6c#47"


@pytest.mark.parametrize("version", VERSIONS)
def test_plan_import_uses_planned_values_and_marks_deletes(version: str) -> None:
    events = {e.resource_id: e for e in load_terraform(FIXTURES / version / "show-plan.json")}
    assert set(events) == STATE_ADDRESSES | {"module.net.aws_route_table.private"}
    assert events["aws_instance.app[1]"].deleted  # planned delete withdraws the baseline
    assert events["aws_instance.app[0]"].config["instance_type"] == "t3.large"
    ports = {r["from_port"] for r in events["module.net.aws_security_group.web"].config["ingress"]}
    assert ports == {443, 22, 9100}
    route_table = events["module.net.aws_route_table.private"].config
    assert "id" not in route_table and "arn" not in route_table  # unknown until apply
    assert route_table["route"][0]["nat_gateway_id"] == "nat-0f1e2d3c4b5a69788"


@pytest.mark.parametrize("version", VERSIONS)
def test_formats_are_detected(version: str) -> None:
    docs = {
        n: json.loads((FIXTURES / version / n).read_text())
        for n in ("terraform.tfstate", "show-state.json", "show-plan.json")
    }
    assert [detect_format(d) for d in docs.values()] == ["state-v4", "show-state", "show-plan"]


def test_old_state_versions_and_non_terraform_json_are_rejected() -> None:
    with pytest.raises(RejectedError, match="version 3"):
        terraform_resources({"version": 3, "lineage": "x", "resources": []})
    with pytest.raises(RejectedError, match="not Terraform"):
        terraform_resources({"hello": "world"})


def test_terraform_baseline_detects_drift_of_a_live_resource() -> None:
    det = DriftDetector()
    for event in load_terraform(FIXTURES / "v1.9" / "show-state.json"):
        det.on_baseline(event)
    sg = det.store.get("module.net.aws_security_group.web")
    assert sg is not None
    live = json.loads(json.dumps(sg.config))
    live["ingress"].reverse()  # providers re-order: not drift
    live["arn"] = "arn:changed"  # computed: not drift
    cc = ConfigChange(resource_id=sg.resource_id, resource_type=sg.resource_type, config=live)
    assert det.on_config(cc) == []
    live["ingress"][0]["cidr_blocks"] = ["0.0.0.0/0", "1.2.3.4/32"]
    finding, decision = det.on_config(cc.model_copy(update={"config": live}))
    assert finding.severity == "CRITICAL" and decision.requires_approval  # type: ignore[attr-defined]


# --- folders and git -------------------------------------------------------------------------


def write_baselines(folder: Path) -> None:
    (folder / "net").mkdir(parents=True, exist_ok=True)
    (folder / "vm.yaml").write_text(
        "resource_id: vm-1\nresource_type: novacron_vm\nconfig:\n  cpus: 4\n  memory_gb: 16\n"
    )
    (folder / "net" / "all.yaml").write_text(
        "baselines:\n"
        "  - {resource_id: fw-1, resource_type: novacron_firewall, config: {allow: [22, 443]}}\n"
        "  - {resource_id: lb-1, resource_type: novacron_lb, config: {port: 443}}\n"
    )
    (folder / "db.json").write_text(
        json.dumps(
            [{"resource_id": "db-1", "resource_type": "novacron_db", "config": {"size": "large"}}]
        )
    )
    (folder / "README.md").write_text("not a baseline")


def test_folder_of_yaml_and_json_baselines(tmp_path: Path) -> None:
    write_baselines(tmp_path)
    events = baselines_from_folder(tmp_path, origin="git", revision="r1")
    assert sorted(e.resource_id for e in events) == ["db-1", "fw-1", "lb-1", "vm-1"]
    assert {e.revision for e in events} == {"r1"} and {e.origin for e in events} == {"git"}


def test_duplicate_and_malformed_baselines_are_rejected(tmp_path: Path) -> None:
    write_baselines(tmp_path)
    (tmp_path / "dup.yaml").write_text("resource_id: vm-1\nresource_type: x\n")
    with pytest.raises(RejectedError, match="vm-1"):
        baselines_from_folder(tmp_path)
    (tmp_path / "dup.yaml").write_text("just: a mapping\n")
    with pytest.raises(RejectedError, match="dup.yaml"):
        baselines_from_folder(tmp_path)


def git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "gitops"
    root.mkdir()
    git(root, "init", "--quiet", "--initial-branch=main")
    write_baselines(root / "baselines")
    git(root, "add", ".")
    git(root, "commit", "--quiet", "-m", "baselines v1")
    return root


def test_git_sync_records_the_commit(repo: Path, tmp_path: Path) -> None:
    head = git(repo, "rev-parse", "HEAD")
    result = sync_git(str(repo), subdir="baselines", workdir=tmp_path)
    assert result.commit == head
    assert sorted(e.resource_id for e in result.events) == ["db-1", "fw-1", "lb-1", "vm-1"]
    assert {e.revision for e in result.events} == {head} and {e.origin for e in result.events} == {
        "git"
    }


def test_git_sync_at_an_earlier_revision_and_a_branch(repo: Path, tmp_path: Path) -> None:
    first = git(repo, "rev-parse", "HEAD")
    (repo / "baselines" / "vm.yaml").write_text(
        "resource_id: vm-1\nresource_type: novacron_vm\nconfig: {cpus: 8}\n"
    )
    (repo / "uncommitted.yaml").write_text("resource_id: x\nresource_type: y\n")
    git(repo, "commit", "--quiet", "-am", "more cpus")
    git(repo, "branch", "feature", first)
    old = sync_git(str(repo), first, subdir="baselines", workdir=tmp_path)
    new = sync_git(str(repo), subdir="baselines", workdir=tmp_path)
    branch = sync_git(str(repo), "feature", subdir="baselines", workdir=tmp_path)
    vm = {
        r.commit: next(e for e in r.events if e.resource_id == "vm-1").config
        for r in (old, new, branch)
    }
    assert vm[first] == {"cpus": 4, "memory_gb": 16} and vm[new.commit] == {"cpus": 8}
    assert branch.commit == first
    assert "x" not in {e.resource_id for e in new.events}  # only committed files count


def test_git_sync_errors_are_clear(repo: Path, tmp_path: Path) -> None:
    with pytest.raises(NonRetryableError, match="checkout"):
        sync_git(str(repo), "no-such-rev", workdir=tmp_path)
    with pytest.raises(RejectedError):
        sync_git(str(repo), "--upload-pack=evil", workdir=tmp_path)
    with pytest.raises(RejectedError, match="not a folder"):
        sync_git(str(repo), subdir="../..", workdir=tmp_path)
    with pytest.raises(NonRetryableError, match="clone"):
        sync_git(str(tmp_path / "missing"), workdir=tmp_path)
