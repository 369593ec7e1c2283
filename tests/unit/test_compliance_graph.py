"""The resource graph: companion resources are judged as part of the parent auditors name."""

from __future__ import annotations

from pathlib import Path

from policies.compliance import (
    RegoEvaluator,
    Resource,
    Scanner,
    build_subjects,
    load_library,
    load_scan_input,
    resources_from_document,
)

LIBRARY = load_library()
SCANNER = Scanner(LIBRARY, RegoEvaluator(LIBRARY))
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "compliance"
S3_CONTROLS = {c.id for c in LIBRARY.for_type("aws_s3_bucket")}


def _bucket_verdicts(name: str) -> tuple[frozenset[str], frozenset[str], dict[str, list[str]]]:
    checks = SCANNER.checks(load_scan_input(FIXTURES / name).resources)
    (bucket,) = [c for c in checks if c.resource.type == "aws_s3_bucket"]
    assert [c.resource.address for c in checks] == ["aws_s3_bucket.data"]  # companions absorbed
    return bucket.failing, bucket.verdicts.unknown, bucket.subject.members


def test_provider_v3_and_v4_plans_of_one_intent_get_the_same_verdicts() -> None:
    v3 = _bucket_verdicts("s3_provider_v3.json")
    v4 = _bucket_verdicts("s3_provider_v4.json")
    assert v3[0] == v4[0] == {"aws-s3-mfa-delete"}  # the only gap of that intent
    assert v3[1] == v4[1] == frozenset()


def test_a_bucket_without_companions_is_flagged() -> None:
    failing, unknown, _ = _bucket_verdicts("s3_provider_v4_bare.json")
    assert {"aws-s3-encryption", "aws-s3-versioning", "aws-s3-access-logging",
            "aws-s3-public-access-block", "aws-s3-deny-insecure-transport"} <= failing
    assert unknown == frozenset()


def test_companion_findings_name_the_bucket_and_the_companion() -> None:
    scan = load_scan_input(FIXTURES / "s3_provider_v4.json")
    report = SCANNER.scan(scan, "cis")
    (v,) = [v for v in report.standards["cis"].violations if v.control_id == "aws-s3-mfa-delete"]
    assert v.resource_id == "aws_s3_bucket.data"
    assert v.evidence["members"]["versioning"] == ["aws_s3_bucket_versioning.data"]
    assert v.evidence["digest"] == scan.digest and len(scan.digest) == 64
    assert "versioning" in v.evidence["attributes"]


def test_a_failing_companion_fails_its_bucket() -> None:
    bucket = Resource("aws_s3_bucket.b", "aws_s3_bucket", {"bucket": "b", "id": "b"})
    sse = Resource("aws_s3_bucket_server_side_encryption_configuration.b",
                   "aws_s3_bucket_server_side_encryption_configuration",
                   {"bucket": "b", "rule": [{"apply_server_side_encryption_by_default": [
                       {"sse_algorithm": "NONE"}]}]})
    (check,) = SCANNER.checks([bucket, sse])  # linked by value (a state: names are known)
    assert check.resource.address == "aws_s3_bucket.b"
    assert "aws-s3-encryption" in check.failing


def test_an_orphan_companion_is_judged_on_its_own() -> None:
    pab = Resource("aws_s3_bucket_public_access_block.x", "aws_s3_bucket_public_access_block",
                   {"bucket": "elsewhere", "block_public_acls": False})
    (check,) = SCANNER.checks([pab])
    assert check.resource.address == pab.address
    assert "aws-s3-public-access-block" in check.failing


def test_the_account_public_access_block_covers_every_bucket() -> None:
    account = Resource("aws_s3_account_public_access_block.acct",
                       "aws_s3_account_public_access_block",
                       {"block_public_acls": True, "block_public_policy": True,
                        "ignore_public_acls": True, "restrict_public_buckets": True})
    bucket = Resource("aws_s3_bucket.b", "aws_s3_bucket", {"bucket": "b"})
    checks = {c.resource.address: c for c in SCANNER.checks([bucket, account])}
    assert "aws-s3-public-access-block" not in checks["aws_s3_bucket.b"].failing
    assert "aws-s3-public-access-block" not in checks[account.address].failing


def test_security_group_rules_join_their_group() -> None:
    checks = SCANNER.checks(load_scan_input(FIXTURES / "security_group_rules.json").resources)
    (group,) = checks
    assert group.resource.address == "aws_security_group.web"
    assert {"aws-sg-public-ingress-allowlisted", "aws-sg-no-public-admin-ipv6"} <= group.failing
    assert "aws-sg-no-public-ssh" not in group.failing  # 22 is open to ::/0 only
    assert sorted(group.subject.members["ingress"]) == [
        "aws_security_group_rule.finger", "aws_vpc_security_group_ingress_rule.https",
        "aws_vpc_security_group_ingress_rule.ssh_v6"]


def test_nsg_rules_and_nacl_rules_join_their_parents() -> None:
    nsg = Resource("azurerm_network_security_group.n", "azurerm_network_security_group",
                   {"name": "web", "resource_group_name": "rg", "security_rule": []})
    rule = Resource("azurerm_network_security_rule.ssh", "azurerm_network_security_rule",
                    {"name": "ssh", "network_security_group_name": "web",
                     "resource_group_name": "rg", "direction": "Inbound", "access": "Allow",
                     "protocol": "Tcp", "source_address_prefix": "*",
                     "destination_port_range": "22"})
    other_rg = Resource("azurerm_network_security_rule.rdp", "azurerm_network_security_rule",
                        {**rule.config, "resource_group_name": "other"})
    subjects = {s.resource.address: s for s in build_subjects([nsg, rule, other_rg])}
    assert set(subjects) == {"azurerm_network_security_group.n",
                             "azurerm_network_security_rule.rdp"}
    (check,) = [SCANNER.check(subjects["azurerm_network_security_group.n"])]
    assert "azure-nsg-no-public-ssh" in check.failing


def test_module_and_count_references_link_instance_by_instance() -> None:
    def rc(address: str, rtype: str, after: dict[str, object]) -> dict[str, object]:
        return {"address": address, "mode": "managed", "type": rtype,
                "name": address.split(".")[-1].split("[")[0],
                "change": {"actions": ["create"], "after": after,
                           "after_unknown": {"id": True, "bucket": True}}}

    ref = {"bucket": {"references": ["aws_s3_bucket.b", "count.index"]}}
    plan = {"format_version": "1.2", "resource_changes": [
        rc("module.m.aws_s3_bucket.b[0]", "aws_s3_bucket", {}),
        rc("module.m.aws_s3_bucket.b[1]", "aws_s3_bucket", {}),
        rc("module.m.aws_s3_bucket_versioning.v[0]", "aws_s3_bucket_versioning",
           {"versioning_configuration": [{"status": "Enabled"}]}),
        rc("module.m.aws_s3_bucket_versioning.v[1]", "aws_s3_bucket_versioning",
           {"versioning_configuration": [{"status": "Suspended"}]})],
        "configuration": {"root_module": {"module_calls": {"m": {"module": {"resources": [
            {"address": "aws_s3_bucket.b", "mode": "managed", "type": "aws_s3_bucket",
             "name": "b", "expressions": {}},
            {"address": "aws_s3_bucket_versioning.v", "mode": "managed",
             "type": "aws_s3_bucket_versioning", "name": "v", "expressions": ref}]}}}}}}
    checks = {c.resource.address: c for c in SCANNER.checks(resources_from_document(plan))}
    assert set(checks) == {"module.m.aws_s3_bucket.b[0]", "module.m.aws_s3_bucket.b[1]"}
    assert "aws-s3-versioning" not in checks["module.m.aws_s3_bucket.b[0]"].failing
    assert "aws-s3-versioning" in checks["module.m.aws_s3_bucket.b[1]"].failing
