"""The terraform effector with the real Terraform CLI (1.5.7, `terraform_data`: no provider
download): a saved plan the gate blocks (it opens 0.0.0.0/0:22) is never applied; an allowed plan
is applied and the post-check plan is clean; a plan that never settles fails the post-check;
drift made out of band is reverted by drift-revert-terraform."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from agents.executor import Executor, ExecutorConfig, InMemoryJournal
from runbooks.effectors import default_terraform
from runbooks.loader import Library
from schemas import Event, Outcome
from tests.unit.test_runbooks_support import approved, book

TERRAFORM = default_terraform()
pytestmark = pytest.mark.skipif(
    shutil.which(TERRAFORM) is None and not Path(TERRAFORM).is_file(),
    reason="Terraform CLI not found: deploy/local/install.sh builds 1.5.7 into "
           "~/.cache/novacron/bin (or set NOVACRON_TERRAFORM)")

MAIN_TF = """
variable "ingress" {
  type = list(object({from_port = number, to_port = number, protocol = string,
                      cidr_blocks = list(string)}))
  default = [{from_port = 443, to_port = 443, protocol = "tcp", cidr_blocks = ["10.0.0.0/8"]}]
}
resource "terraform_data" "web_sg" {
  input = {
    resource_type = "aws_security_group"
    config        = { name = "web", ingress = var.ingress }
  }
}
"""
SSH_WORLD = [{"from_port": 22, "to_port": 22, "protocol": "tcp", "cidr_blocks": ["0.0.0.0/0"]}]
HTTPS_VPC = [{"from_port": 443, "to_port": 443, "protocol": "tcp",
              "cidr_blocks": ["10.20.0.0/16"]}]


def workspace(root: Path, text: str = MAIN_TF) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "main.tf").write_text(text)
    return root


def tf(folder: Path, *args: str) -> str:
    env = {**os.environ, "TF_IN_AUTOMATION": "1", "CHECKPOINT_DISABLE": "1"}
    return subprocess.run([TERRAFORM, *args], cwd=folder, env=env, capture_output=True,
                          text=True, check=True).stdout


def state_ingress(folder: Path) -> Any:
    if not (folder / "terraform.tfstate").exists():
        return None
    doc = json.loads(tf(folder, "show", "-json"))
    resources = (doc.get("values") or {}).get("root_module", {}).get("resources", [])
    return [r["values"]["input"]["config"]["ingress"] for r in resources] or None


def sg_book() -> Any:
    return book([{"id": "apply", "action_type": "terraform", "action": "apply", "critical": True,
                  "parameters": {"dir": "${terraform_dir}",
                                 "variables": {"ingress": "${ingress}"}}}],
                id="sg-ingress", metadata={"id": "sg-ingress", "selectable": True},
                parameters={"ingress": {"type": "list", "items": "object", "max_items": 20,
                                        "overridable": True},
                            "terraform_dir": {"type": "string", "kind": "endpoint"}})


def run(folder: Path, action_type: str, params: dict[str, Any], library: Library,
        runbooks: dict[str, str] | None = None, resource_id: str = "terraform_data.web_sg"
        ) -> tuple[Any, list[Event]]:
    events: list[Event] = []
    mapping = {**ExecutorConfig().runbooks, **(runbooks or {})}
    config = ExecutorConfig(runbooks=mapping, defaults={"terraform_dir": str(folder)})
    ex = Executor(config, journal=InMemoryJournal(), emit=events.append, library=library)
    action = approved(library, action_type, params, runbooks=mapping, resource_id=resource_id)
    return asyncio.run(ex.handle(action)), events


def step(events: list[Event]) -> Outcome:
    return [e for e in events if isinstance(e, Outcome) and e.scope == "step"
            and e.status in ("succeeded", "failed")][-1]


def library() -> Library:
    lib = Library([])
    lib.add(sg_book())
    return lib


def test_a_plan_the_gate_blocks_is_never_applied(tmp_path: Path) -> None:
    folder = workspace(tmp_path / "ws")
    result, events = run(folder, "run_runbook", {"runbook": "sg-ingress", "ingress": SSH_WORLD},
                         library())
    assert result.status == "failed"
    error = step(events).error or ""
    assert "PlanBlocked" in error and "the plan gate denied the plan" in error
    assert "aws-sg-no-public-ssh" in error and "CRITICAL" in error
    assert state_ingress(folder) is None  # nothing applied: no state at all


def test_an_allowed_plan_is_applied_and_the_post_check_is_clean(tmp_path: Path) -> None:
    folder = workspace(tmp_path / "ws")
    result, events = run(folder, "run_runbook", {"runbook": "sg-ingress", "ingress": HTTPS_VPC},
                         library())
    assert result.status == "succeeded", result.error
    out = step(events).output
    assert out["applied"] is True and out["verified"] is True and out["gate"]["allowed"]
    assert out["changes"] == [{"address": "terraform_data.web_sg", "type": "terraform_data",
                               "actions": ["create"]}]
    assert len(out["plan_sha256"]) == 64
    assert state_ingress(folder) == [HTTPS_VPC]
    # then an attempt to open SSH is blocked and the applied state stays
    result, _ = run(folder, "run_runbook", {"runbook": "sg-ingress", "ingress": SSH_WORLD},
                    library())
    assert result.status == "failed" and state_ingress(folder) == [HTTPS_VPC]
    # the same values again: nothing to do, and that is verified by the plan itself
    result, events = run(folder, "run_runbook", {"runbook": "sg-ingress",
                                                 "ingress": HTTPS_VPC}, library())
    assert result.ok and step(events).output["reason"] == "no changes"


def test_a_plan_that_never_settles_fails_the_post_check(tmp_path: Path) -> None:
    folder = workspace(tmp_path / "ws", 'resource "terraform_data" "clock" {\n'
                                        '  input = timestamp()\n}\n')
    lib = Library([])
    lib.add(book([{"id": "apply", "action_type": "terraform", "critical": True,
                   "parameters": {"dir": "${terraform_dir}"}}], id="clock",
                 metadata={"id": "clock", "selectable": True},
                 parameters={"terraform_dir": {"type": "string", "kind": "endpoint"}}))
    result, events = run(folder, "run_runbook", {"runbook": "clock"}, lib,
                         resource_id="terraform_data.clock")
    assert result.status == "failed"
    error = step(events).error or ""
    assert "PostConditionFailed" in error and "terraform plan still wants changes" in error
    assert "terraform_data.clock" in error


def test_out_of_band_drift_is_reverted_with_terraform(tmp_path: Path) -> None:
    folder = workspace(tmp_path / "ws")
    tf(folder, "apply", "-auto-approve", "-input=false")
    declared = state_ingress(folder)
    # someone applies a hand-edited value (as a console change would): drift from the code
    (tmp_path / "hand.tfvars.json").write_text(json.dumps({"ingress": HTTPS_VPC}))
    tf(folder, "apply", "-auto-approve", "-input=false",
       f"-var-file={tmp_path / 'hand.tfvars.json'}")
    assert state_ingress(folder) != declared
    result, events = run(folder, "revert_drift", {"fields": ["/ingress/0"]}, Library(),
                         runbooks={"revert_drift": "drift-revert-terraform"})
    assert result.status == "succeeded", result.error
    assert state_ingress(folder) == declared and step(events).output["verified"] is True


def test_event_data_never_becomes_a_target_or_hcl(tmp_path: Path) -> None:
    folder = workspace(tmp_path / "ws")
    for rid in ('terraform_data.web_sg"; rm -rf /', "-target=x", "../../etc"):
        result, events = run(folder, "revert_drift", {}, Library(),
                             runbooks={"revert_drift": "drift-revert-terraform"}, resource_id=rid)
        assert result.status == "failed"
        assert "is not a Terraform resource address" in (step(events).error or "")
    hcl = [{"from_port": 443, "to_port": 443, "protocol": 'tcp"\n}\nresource "x" "y" {',
            "cidr_blocks": ["10.0.0.0/8"]}]
    result, _ = run(folder, "run_runbook", {"runbook": "sg-ingress", "ingress": hcl}, library())
    assert result.ok  # a plain string value inside the JSON var file, nothing else
    assert state_ingress(folder)[0][0]["protocol"] == hcl[0]["protocol"]
