"""The plan gate: compliance controls plus the `infrastructure` Rego policies over a plan JSON,
in-process and as the child process the execute role uses; every failure denies."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from policies.plan_gate import SHIPPED, PlanJudge, main, modelled_resources
from runbooks.effectors import TerraformConfig
from runbooks.steps.plangate import SubprocessPlanGate


def plan(ingress: list[dict[str, Any]], actions: list[str] | None = None) -> dict[str, Any]:
    after = {"input": {"resource_type": "aws_security_group",
                       "config": {"name": "web", "ingress": ingress}}}
    return {"format_version": "1.2", "resource_changes": [{
        "address": "terraform_data.web_sg", "mode": "managed", "type": "terraform_data",
        "change": {"actions": actions or ["update"], "after": after}}]}


SSH = [{"from_port": 22, "to_port": 22, "protocol": "tcp", "cidr_blocks": ["0.0.0.0/0"],
        "ipv6_cidr_blocks": []}]
HTTPS = [{"from_port": 443, "to_port": 443, "protocol": "tcp", "cidr_blocks": ["10.0.0.0/8"],
          "ipv6_cidr_blocks": []}]


def test_terraform_data_is_scanned_as_the_type_it_models() -> None:
    [res] = modelled_resources(plan(SSH))
    assert (res.address, res.type, res.config["name"]) == (
        "terraform_data.web_sg", "aws_security_group", "web")
    assert modelled_resources(plan(SSH, ["delete"])) == []  # nothing left behind to scan


def test_the_judge_denies_violations_and_destroys_and_allows_a_clean_plan() -> None:
    judge = PlanJudge([SHIPPED], ["CRITICAL", "HIGH"])
    denied = judge.judge(plan(SSH), {"resource_id": "terraform_data.web_sg"})
    assert not denied["allowed"]
    assert "aws-sg-no-public-ssh" in " ".join(denied["reasons"])
    assert denied["policy_versions"] == {"novacron.infrastructure.terraform": 1}
    assert judge.judge(plan(HTTPS), {})["allowed"]
    gone = judge.judge(plan(HTTPS, ["delete", "create"]), {})
    assert not gone["allowed"] and "destroys terraform_data.web_sg" in gone["reasons"][0]
    assert judge.judge(plan(HTTPS, ["delete", "create"]), {"allow_destroy": True})["allowed"]


def test_no_plan_policy_or_a_broken_one_fails_closed(tmp_path: Path) -> None:
    assert not PlanJudge([tmp_path], ["CRITICAL"]).judge(plan(HTTPS), {})["allowed"]
    (tmp_path / "bad.rego").write_text(
        "# METADATA\n# custom:\n#   policy_type: infrastructure\n"
        "package x.y\n\ndeny contains 1/0\n")
    verdict = PlanJudge([tmp_path], ["CRITICAL"]).judge(plan(HTTPS), {})
    assert not verdict["allowed"]


def test_the_child_process_answers_and_fails_closed(tmp_path: Path) -> None:
    gate = SubprocessPlanGate(TerraformConfig(block_severities=["CRITICAL"]))
    assert not asyncio.run(gate.check(plan(SSH), {})).allowed
    ok = asyncio.run(gate.check(plan(HTTPS), {}))
    assert ok.allowed and ok.details["violations"] == []
    missing = SubprocessPlanGate(TerraformConfig(), python=str(tmp_path / "no-python"))
    verdict = asyncio.run(missing.check(plan(HTTPS), {}))
    assert not verdict.allowed and "could not start" in verdict.reasons[0]
    silent = SubprocessPlanGate(TerraformConfig(), python="/bin/true")
    assert not asyncio.run(silent.check(plan(HTTPS), {})).allowed


def test_the_command_line_exit_code(tmp_path: Path, capsys: Any) -> None:
    import json

    file = tmp_path / "plan.json"
    file.write_text(json.dumps(plan(SSH)))
    assert main([str(file)]) == 3
    assert json.loads(capsys.readouterr().out)["allowed"] is False
    file.write_text("{not json")
    assert main([str(file)]) == 3 and "plan gate error" in capsys.readouterr().out
