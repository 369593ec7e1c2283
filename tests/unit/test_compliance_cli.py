"""`novacron compliance scan|controls`."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from streams.cli.compliance import app

runner = CliRunner()

PLAN = {
    "format_version": "1.2",
    "resource_changes": [
        {"address": "aws_security_group.web", "mode": "managed", "type": "aws_security_group",
         "name": "web", "change": {"actions": ["create"], "after": {"name": "web", "ingress": [
             {"cidr_blocks": ["0.0.0.0/0"], "from_port": 22, "to_port": 22,
              "protocol": "tcp"}]}}},
        {"address": "aws_ebs_volume.v", "mode": "managed", "type": "aws_ebs_volume", "name": "v",
         "change": {"actions": ["create"], "after": {"encrypted": True}}},
    ],
}


def _plan(tmp_path: Path, doc: object = PLAN) -> Path:
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(doc))
    return path


def test_scan_table_reports_violations_and_exits_1(tmp_path: Path) -> None:
    result = runner.invoke(app, ["scan", str(_plan(tmp_path)), "--standard", "pci-dss"])
    assert result.exit_code == 1, result.output
    assert "PCI-DSS v4.0" in result.output
    assert "aws-sg-no-public-ssh" in result.output
    assert "Restrict port 22" in result.output


def test_scan_json_has_scores(tmp_path: Path) -> None:
    result = runner.invoke(app, ["scan", str(_plan(tmp_path)), "-s", "cis", "--format", "json",
                                 "--soft-fail"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    cis = report["standards"]["cis"]
    assert list(report["standards"]) == ["cis"]
    assert cis["checks_failed"] == len(cis["violations"]) >= 1
    assert 0 < cis["score"] < 100


def test_clean_plan_exits_0(tmp_path: Path) -> None:
    clean = {"format_version": "1.2", "resource_changes": [PLAN["resource_changes"][1]]}
    result = runner.invoke(app, ["scan", str(_plan(tmp_path, clean))])
    assert result.exit_code == 0, result.output
    assert "100.0%" in result.output


def test_scan_rejects_bad_input(tmp_path: Path) -> None:
    assert runner.invoke(app, ["scan", str(_plan(tmp_path)), "-s", "fedramp"]).exit_code == 2
    assert runner.invoke(app, ["scan", str(_plan(tmp_path, {"x": 1}))]).exit_code == 2
    missing = runner.invoke(app, ["scan", str(tmp_path / "none.json")])
    assert missing.exit_code == 2


def test_controls_lists_by_standard_and_type() -> None:
    result = runner.invoke(app, ["controls", "--standard", "hipaa", "--type", "aws_ebs_volume",
                                 "--format", "json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    assert [r["id"] for r in rows] == ["aws-ebs-encrypted"]
    assert "examples" not in rows[0]
    table = runner.invoke(app, ["controls", "-s", "cis", "-t", "aws_ebs_volume"])
    assert table.exit_code == 0 and "1 controls, CIS Benchmarks" in table.output
    assert "aws/2.2.1" in table.output
