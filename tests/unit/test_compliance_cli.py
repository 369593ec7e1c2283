"""`novacron compliance scan|controls`."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from typer.testing import CliRunner

from schemas.attestations import ComplianceAttestation
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
    assert "aws-1.5.0/" in table.output and "aws-3.0.0/" in table.output


FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "compliance"


def test_scan_of_an_empty_workspace_exits_0(tmp_path: Path) -> None:
    result = runner.invoke(app, ["scan", str(_plan(tmp_path, {"format_version": "1.0"}))])
    assert result.exit_code == 0, result.output
    assert "0 resources" in result.output


def test_unknown_values_do_not_fail_a_scan(tmp_path: Path) -> None:
    result = runner.invoke(app, ["scan", str(FIXTURES / "plan_unknowns.json"), "-s", "pci-dss",
                                 "--format", "json"])
    report = json.loads(result.output)
    pci = report["standards"]["pci-dss"]
    assert result.exit_code == 1  # the log group's missing KMS key is known
    assert {v["control_id"] for v in pci["violations"]} == {"aws-log-group-kms"}
    assert {"aws-iam-password-length-pci-dss", "aws-log-group-retention"} <= {
        v["control_id"] for v in pci["unknown"]}


def test_the_public_port_allow_list_is_a_parameter(tmp_path: Path) -> None:
    plan = {"format_version": "1.2", "resource_changes": [
        {"address": "aws_security_group_rule.alt", "mode": "managed",
         "type": "aws_security_group_rule", "name": "alt", "change": {"actions": ["create"],
         "after": {"type": "ingress", "cidr_blocks": ["0.0.0.0/0"], "from_port": 8443,
                   "to_port": 8443, "protocol": "tcp"}}}]}
    path = _plan(tmp_path, plan)
    assert runner.invoke(app, ["scan", str(path), "-s", "pci-dss"]).exit_code == 1
    allowed = runner.invoke(app, ["scan", str(path), "-s", "pci-dss", "--param",
                                  "aws-sg-public-ingress-allowlisted.allowed_ports=[443,8443]"])
    assert allowed.exit_code == 0, allowed.output
    bad = runner.invoke(app, ["scan", str(path), "--param", "nonsense"])
    assert bad.exit_code == 2 and "CONTROL.NAME=JSON" in bad.output


def _records(tmp_path: Path, *records: ComplianceAttestation) -> Path:
    path = tmp_path / "attestations.json"
    path.write_text(json.dumps([r.model_dump(mode="json") for r in records]))
    return path


def test_report_lists_requirements_controls_evidence_and_gaps(tmp_path: Path) -> None:
    now = datetime.now(UTC)
    records = _records(tmp_path, ComplianceAttestation(
        kind="attestation", control_id="aws-root-mfa", by="ana", statement="hardware MFA on root",
        evidence_url="https://tickets.example.com/SEC-1", expires_at=now + timedelta(days=30)))
    result = runner.invoke(app, ["report", str(FIXTURES / "s3_provider_v4.json"), "-s", "cis",
                                 "--attestations", str(records), "--format", "json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    rows = {(r["catalogue"], r["requirement"]): r for r in doc["requirements"]}
    mfa_delete = rows[("aws-1.5.0", "2.1.3")]
    assert mfa_delete["status"] == "fail"
    (entry,) = mfa_delete["controls"]
    (finding,) = entry["findings"]
    assert finding["resource_id"] == "aws_s3_bucket.data"
    assert finding["evidence"]["members"]["versioning"] == ["aws_s3_bucket_versioning.data"]
    assert finding["evidence"]["digest"] == doc["digest"] and len(doc["digest"]) == 64
    assert rows[("aws-3.0.0", "2.1.1")]["status"] == "pass"  # the bucket denies HTTP
    assert rows[("aws-1.5.0", "1.5")]["status"] == "pass"  # attested root MFA
    assert rows[("aws-1.5.0", "1.4")]["status"] == "fail"  # root access keys: not attested
    gaps = {(u["catalogue"], u["requirement"]) for u in doc["uncovered"]}
    assert ("aws-3.0.0", "4.16") in gaps and ("aws-1.5.0", "2.1.3") not in gaps
    assert doc["unlisted_refs"] == []


def test_an_expired_attestation_stops_counting_in_the_report(tmp_path: Path) -> None:
    past = datetime.now(UTC) - timedelta(days=1)
    records = _records(tmp_path, ComplianceAttestation(
        kind="attestation", control_id="aws-root-mfa", by="ana", statement="hardware MFA on root",
        evidence_url="https://tickets.example.com/SEC-1", expires_at=past))
    result = runner.invoke(app, ["report", str(FIXTURES / "s3_provider_v4.json"), "-s", "cis",
                                 "--attestations", str(records), "--format", "json"])
    rows = {(r["catalogue"], r["requirement"]): r for r in json.loads(result.output)[
        "requirements"]}
    assert rows[("aws-1.5.0", "1.5")]["status"] == "fail"


def test_a_risk_acceptance_shows_in_scan_and_scores(tmp_path: Path) -> None:
    records = _records(tmp_path, ComplianceAttestation(
        kind="acceptance", control_id="aws-s3-mfa-delete", resource_id="aws_s3_bucket.data",
        by="olu", statement="MFA delete needs the root user; compensated by object lock",
        expires_at=datetime.now(UTC) + timedelta(days=10)))
    plain = json.loads(runner.invoke(app, ["scan", str(FIXTURES / "s3_provider_v4.json"), "-s",
                                           "cis", "--format", "json"]).output)
    result = runner.invoke(app, ["scan", str(FIXTURES / "s3_provider_v4.json"), "-s", "cis",
                                 "--attestations", str(records), "--format", "json"])
    cis = json.loads(result.output)["standards"]["cis"]
    assert [v["control_id"] for v in cis["accepted"]] == ["aws-s3-mfa-delete"]
    assert cis["accepted"][0]["acceptance"]["by"] == "olu"
    assert "aws-s3-mfa-delete" not in {v["control_id"] for v in cis["violations"]}
    # an accepted check is neither passed nor failed: the control leaves the score
    (control,) = [c for c in cis["controls"] if c["control_id"] == "aws-s3-mfa-delete"]
    assert (control["status"], control["accepted"], control["score"]) == ("accepted", 1, None)
    (before,) = [c for c in plain["standards"]["cis"]["controls"]
                 if c["control_id"] == "aws-s3-mfa-delete"]
    assert (before["status"], before["score"]) == ("fail", 0.0)
