"""Terraform plan/state extraction and per-standard scoring of scans."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from policies.compliance import (
    FakeEvaluator,
    RegoEvaluator,
    Resource,
    Scanner,
    load_library,
    load_resources,
    resources_from_document,
)
from policies.compliance.resources import UNKNOWN, provider_of
from schemas.errors import NonRetryableError, RejectedError

LIBRARY = load_library()
SCANNER = Scanner(LIBRARY, RegoEvaluator(LIBRARY))


def _rc(address: str, actions: list[str], after: Any, unknown: Any = None) -> dict[str, Any]:
    rtype, name = address.split(".")[-2:]
    return {"address": address, "mode": "managed", "type": rtype, "name": name,
            "change": {"actions": actions, "after": after, "after_unknown": unknown or {}}}


PLAN = {
    "format_version": "1.2",
    "terraform_version": "1.9.5",
    "planned_values": {"root_module": {}},
    "resource_changes": [
        _rc("aws_ebs_volume.data", ["create"], {"size": 10, "encrypted": False},
            {"kms_key_id": True, "id": True}),
        _rc("aws_ebs_volume.logs", ["no-op"], {"size": 10, "encrypted": True}),
        _rc("module.db.aws_db_instance.main", ["update"],
            {"storage_encrypted": True, "publicly_accessible": True, "multi_az": True}),
        _rc("aws_security_group.gone", ["delete"], None),
        _rc("random_id.suffix", ["create"], {"byte_length": 4}),
        {"address": "data.aws_ami.x", "mode": "data", "type": "aws_ami", "name": "x",
         "change": {"actions": ["read"], "after": {}}},
    ],
}

STATE_V4 = {
    "version": 4, "terraform_version": "1.9.5", "serial": 3, "lineage": "abc",
    "resources": [
        {"mode": "managed", "type": "aws_kms_key", "name": "k", "instances": [
            {"index_key": 0, "attributes": {"enable_key_rotation": True}},
            {"index_key": 1, "attributes": {"enable_key_rotation": False}}]},
        {"mode": "managed", "module": "module.net", "type": "aws_subnet", "name": "a",
         "instances": [{"attributes": {"map_public_ip_on_launch": True}}]},
        {"mode": "data", "type": "aws_caller_identity", "name": "me",
         "instances": [{"attributes": {}}]},
    ],
}

SHOW_STATE = {
    "format_version": "1.0", "terraform_version": "1.9.5",
    "values": {"root_module": {
        "resources": [{"address": "aws_cloudtrail.org", "mode": "managed",
                       "type": "aws_cloudtrail", "name": "org",
                       "values": {"is_multi_region_trail": True}}],
        "child_modules": [{"resources": [
            {"address": "module.k8s.kubernetes_pod.p", "mode": "managed", "type": "kubernetes_pod",
             "name": "p", "values": {"spec": [{"host_network": True, "container": []}]}}]}],
    }},
}


def test_plan_uses_after_values_and_skips_deletes_and_data_sources() -> None:
    found = {r.address: r for r in resources_from_document(PLAN)}
    assert set(found) == {"aws_ebs_volume.data", "aws_ebs_volume.logs",
                          "module.db.aws_db_instance.main", "random_id.suffix"}
    assert found["aws_ebs_volume.data"].config["kms_key_id"] == UNKNOWN
    assert found["aws_ebs_volume.data"].config["encrypted"] is False
    assert found["module.db.aws_db_instance.main"].type == "aws_db_instance"


def test_unknown_values_are_unknown_not_violations() -> None:
    # A KMS key known only after apply may or may not be set: unknown, never a violation.
    plan = {"format_version": "1.2", "resource_changes": [
        _rc("aws_cloudtrail.org", ["create"], {"is_multi_region_trail": True},
            {"kms_key_id": True})]}
    (resource,) = resources_from_document(plan)
    check = SCANNER.check(resource)
    assert "aws-cloudtrail-kms" not in check.failing
    assert "aws-cloudtrail-kms" in check.verdicts.unknown


def test_plan_without_changes_falls_back_to_planned_values() -> None:
    plan = {"format_version": "1.2", "planned_values": {"root_module": {"resources": [
        {"address": "aws_ebs_volume.v", "mode": "managed", "type": "aws_ebs_volume",
         "name": "v", "values": {"encrypted": True}}]}}}
    assert resources_from_document(plan) == [
        Resource("aws_ebs_volume.v", "aws_ebs_volume", {"encrypted": True})]


def test_state_v4_addresses_modules_and_index_keys() -> None:
    found = [r.address for r in resources_from_document(STATE_V4)]
    assert found == ["aws_kms_key.k[0]", "aws_kms_key.k[1]", "module.net.aws_subnet.a"]


def test_show_state_walks_child_modules() -> None:
    found = [(r.address, r.type) for r in resources_from_document(SHOW_STATE)]
    assert found == [("aws_cloudtrail.org", "aws_cloudtrail"),
                     ("module.k8s.kubernetes_pod.p", "kubernetes_pod")]


def test_plain_resource_lists() -> None:
    doc = [{"resource_id": "vm-1", "resource_type": "novacron_vm", "config": {"public_ip": True}}]
    assert resources_from_document(doc) == [Resource("vm-1", "novacron_vm", {"public_ip": True})]
    with pytest.raises(RejectedError, match="resource #0"):
        resources_from_document([{"config": {}}])


@pytest.mark.parametrize("doc", [{"hello": 1}, "text", {"version": 3, "lineage": "x",
                                                       "resources": []}])
def test_other_documents_are_rejected(doc: Any) -> None:
    with pytest.raises(RejectedError):
        resources_from_document(doc)


def test_load_resources_reports_bad_files(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{nope")
    with pytest.raises(RejectedError, match="not valid JSON"):
        load_resources(bad)
    with pytest.raises(RejectedError, match="cannot read"):
        load_resources(tmp_path / "missing.json")
    good = tmp_path / "plan.json"
    good.write_text(json.dumps(PLAN))
    assert len(load_resources(good)) == 4


def test_provider_of_type() -> None:
    assert [provider_of(t) for t in ("aws_s3_bucket", "google_sql_database_instance",
                                     "azurerm_key_vault", "kubernetes_pod", "novacron_vm")] == [
        "aws", "gcp", "azure", "kubernetes", "novacron"]


def test_scan_scores_a_plan_per_standard() -> None:
    report = SCANNER.scan(resources_from_document(PLAN), "pci-dss")
    assert list(report.standards) == ["pci-dss"]
    pci = report.standards["pci-dss"]
    assert report.resources == 4 and report.resources_checked == 3
    assert report.unchecked_types == {"random_id": 1}
    failed = {(v.resource_id, v.control_id) for v in pci.violations}
    assert failed == {("aws_ebs_volume.data", "aws-ebs-encrypted"),
                      ("module.db.aws_db_instance.main", "aws-rds-not-public"),
                      ("module.db.aws_db_instance.main", "aws-rds-iam-auth"),
                      ("module.db.aws_db_instance.main", "aws-rds-log-exports")}
    assert pci.checks_failed == 4
    assert pci.checks == pci.checks_passed + pci.checks_failed
    # the documented method: severity-weighted mean of the control scores
    decided = [c for c in pci.controls if c.score is not None]
    expected = sum(c.weight * c.score for c in decided) / sum(c.weight for c in decided)
    assert pci.score == round(expected, 2)
    assert pci.controls_evaluated == pci.controls_passed + pci.controls_failed
    assert pci.violations[0].severity == "CRITICAL"  # most severe first
    assert all(r.startswith("pci-dss:") for v in pci.violations for r in v.refs)
    assert report.failed


def test_scan_without_standard_scores_all_six() -> None:
    report = SCANNER.scan(resources_from_document(STATE_V4))
    assert list(report.standards) == ["cis", "pci-dss", "hipaa", "soc2", "gdpr", "iso27001"]
    cis = report.standards["cis"]
    assert {v.resource_id for v in cis.violations} == {"aws_kms_key.k[1]"}  # subnet: no CIS ref
    assert {v.resource_id for v in report.standards["pci-dss"].violations} == {
        "aws_kms_key.k[1]", "module.net.aws_subnet.a"}


def test_score_is_none_when_nothing_applies() -> None:
    report = SCANNER.scan([Resource("random_id.x", "random_id", {})], "hipaa")
    assert report.standards["hipaa"].score is None
    assert not report.failed


def test_a_clean_resource_scores_100() -> None:
    report = SCANNER.scan([Resource("aws_ebs_volume.v", "aws_ebs_volume", {"encrypted": True})])
    assert report.standards["cis"].score == 100.0
    assert report.standards["cis"].controls_passed == 1


def test_evaluation_errors_fail_closed() -> None:
    def broken(rtype: str, config: Any) -> set[str]:
        raise NonRetryableError("boom")

    scanner = Scanner(LIBRARY, FakeEvaluator(broken))
    report = scanner.scan([Resource("aws_ebs_volume.v", "aws_ebs_volume", {"encrypted": True})])
    assert report.errors == ["aws_ebs_volume.v: boom"]
    assert report.standards["cis"].checks_failed == 1


def test_non_json_config_values_fail_closed() -> None:
    check = SCANNER.check(Resource("aws_ebs_volume.v", "aws_ebs_volume", {"encrypted": object()}))
    assert check.error and "aws-ebs-encrypted" in check.failing


def test_each_resource_is_evaluated_once_for_all_standards() -> None:
    fake = FakeEvaluator(lambda rtype, config: {"aws-ebs-encrypted"})
    Scanner(LIBRARY, fake).scan([Resource("v", "aws_ebs_volume", {})] * 3)
    assert fake.calls == 3
