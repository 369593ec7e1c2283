"""Plans and states rendered by the real Terraform CLI (1.5.7, built-in resources only)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from policies.compliance import UNKNOWN, scan_input_from_document
from streams.cli.compliance import app

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "compliance"
TERRAFORM = os.environ.get("NOVACRON_TERRAFORM") or str(
    Path.home() / ".cache" / "novacron" / "bin" / "terraform")
needs_terraform = pytest.mark.skipif(
    not (Path(TERRAFORM).is_file() or shutil.which(TERRAFORM)),
    reason="Terraform 1.5.7 not found: `GOBIN=~/.cache/novacron/bin go install "
           "github.com/hashicorp/terraform@v1.5.7` (or set NOVACRON_TERRAFORM)")
MAIN_TF = """
resource "terraform_data" "bucket" {
  input = { bucket = "logs" }
}
resource "terraform_data" "config" {
  input = { bucket = terraform_data.bucket.id, status = "Enabled" }
}
module "m" {
  source = "./m"
  parent = terraform_data.bucket.id
}
"""
MODULE_TF = """
variable "parent" {}
resource "terraform_data" "child" {
  count = 2
  input = var.parent
}
"""


def _tf(workdir: Path, *args: str) -> str:
    env = {**os.environ, "TF_IN_AUTOMATION": "1", "CHECKPOINT_DISABLE": "1",
           "TF_CLI_CONFIG_FILE": os.devnull}
    done = subprocess.run([TERRAFORM, *args], cwd=workdir, env=env, capture_output=True,
                          text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.fixture(scope="module")
def real_plan(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    if not (Path(TERRAFORM).is_file() or shutil.which(TERRAFORM)):
        pytest.skip("Terraform 1.5.7 not found (see needs_terraform)")
    work = tmp_path_factory.mktemp("tf")
    (work / "main.tf").write_text(MAIN_TF)
    (work / "m").mkdir()
    (work / "m" / "main.tf").write_text(MODULE_TF)
    _tf(work, "init", "-input=false", "-no-color")
    _tf(work, "plan", "-input=false", "-no-color", "-out=plan.out")
    plan: dict[str, Any] = json.loads(_tf(work, "show", "-json", "plan.out"))
    return plan


@needs_terraform
def test_the_scan_of_an_empty_workspace_is_an_empty_estate(tmp_path: Path) -> None:
    shown = _tf(tmp_path, "show", "-json")
    assert json.loads(shown) == {"format_version": "1.0"}
    path = tmp_path / "empty.json"
    path.write_text(shown)
    result = CliRunner().invoke(app, ["scan", str(path), "--format", "json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert (report["resources"], report["source"]) == (0, "empty")
    assert all(s["score"] is None for s in report["standards"].values())


@needs_terraform
def test_unknown_values_and_configuration_references_of_a_real_plan(
    real_plan: dict[str, Any],
) -> None:
    assert real_plan["terraform_version"] == "1.5.7"
    scan = scan_input_from_document(real_plan)
    found = {r.address: r for r in scan.resources}
    assert set(found) == {"terraform_data.bucket", "terraform_data.config",
                          "module.m.terraform_data.child[0]", "module.m.terraform_data.child[1]"}
    config = found["terraform_data.config"]
    assert config.config["input"] == {"bucket": UNKNOWN, "status": "Enabled"}
    assert config.config["id"] == UNKNOWN
    assert config.configured == frozenset({"input"})
    assert "terraform_data.bucket" in config.references["input"]
    child = found["module.m.terraform_data.child[1]"]
    assert child.references["input"] == ("module.m.var.parent",)  # module-relative, prefixed
    assert found["terraform_data.bucket"].config["input"] == {"bucket": "logs"}


@needs_terraform
def test_companions_link_through_real_configuration_references(
    real_plan: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    from policies.compliance import graph

    # terraform_data stands in for a companion type: `config` configures `bucket` through a
    # reference whose value (the id) is unknown at plan time, as with aws_s3_bucket_versioning
    spec = graph.Companion("terraform_data", ("terraform_data_parent",), "input",
                           ("id",), lambda cfg, c: cfg.update(linked=True), ("linked",))
    monkeypatch.setattr(graph, "_BY_TYPE", {"terraform_data": spec})
    monkeypatch.setattr(graph, "COMPANIONS", (spec,))
    resources = [r if r.address != "terraform_data.bucket" else type(r)(
        r.address, "terraform_data_parent", r.config, r.configured, r.references)
        for r in scan_input_from_document(real_plan).resources]
    subjects = {s.resource.address: s for s in graph.build_subjects(resources)}
    assert subjects["terraform_data.bucket"].members == {"linked": ["terraform_data.config"]}
    assert "terraform_data.config" not in subjects


@needs_terraform
def test_the_committed_fixtures_have_the_shape_of_a_real_plan(real_plan: dict[str, Any]) -> None:
    real_change = real_plan["resource_changes"][0]
    real_config = real_plan["configuration"]["root_module"]["resources"][0]
    for path in sorted(FIXTURES.glob("*.json")):
        doc = json.loads(path.read_text())
        assert doc["format_version"] == real_plan["format_version"], path.name
        assert set(doc) <= set(real_plan), path.name
        for rc in doc["resource_changes"]:
            assert set(rc) <= set(real_change) | {"index", "module_address"}, path.name
            assert set(rc["change"]) == set(real_change["change"]), path.name
        for res in doc["configuration"]["root_module"]["resources"]:
            assert set(res) == set(real_config), path.name
