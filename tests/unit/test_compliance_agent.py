"""The compliance agent: results per config change, violation lifecycle, remediation proposals."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from agents.compliance import SOURCE, ComplianceChecker, ComplianceConfig
from policies.compliance import FakeEvaluator, Resource, load_library
from schemas import ComplianceResult, ConfigChange
from schemas.attestations import ComplianceAttestation
from schemas.errors import RejectedError

LIBRARY = load_library()
T0 = datetime(2026, 11, 2, 12, 0, tzinfo=UTC)
VM_OK = {"service": "checkout", "disk_encrypted": True, "public_ip": False, "monitoring": True,
         "tags": {"owner": "platform"}, "security_groups": []}


@pytest.fixture(scope="module")
def shared_checker() -> ComplianceChecker:
    return ComplianceChecker(library=LIBRARY)


def _checker(**config: Any) -> ComplianceChecker:
    return ComplianceChecker(ComplianceConfig(**config), library=LIBRARY)


def _change(config: dict[str, Any], *, minutes: int = 0, op: str = "update",
            rid: str = "vm-1", rtype: str = "novacron_vm") -> ConfigChange:
    return ConfigChange(resource_id=rid, resource_type=rtype, config=config, op=op,  # type: ignore[arg-type]
                        event_time=T0 + timedelta(minutes=minutes))


def _by_control(results: list[ComplianceResult]) -> dict[str, ComplianceResult]:
    return {r.control_id: r for r in results}


def test_every_applicable_control_gets_a_result_on_the_change_chain() -> None:
    checker = _checker()
    change = _change({**VM_OK, "disk_encrypted": False})
    results = checker.on_config(change)
    assert {r.control_id for r in results} == {c.id for c in LIBRARY.for_type("novacron_vm")}
    bad = _by_control(results)["novacron-vm-disk-encrypted"]
    assert (bad.passed, bad.status, bad.severity) == (False, "open", "HIGH")
    assert bad.remediation and "violated by vm-1" in bad.message
    assert "pci-dss:3.5.1" in bad.standards and "hipaa:164.312(a)(2)(iv)" in bad.standards
    assert all(r.causation_id == change.event_id for r in results)
    assert all(r.correlation_id == change.correlation_id and r.source == SOURCE for r in results)
    ok = _by_control(results)["novacron-vm-monitoring"]
    assert (ok.passed, ok.status, ok.remediation) == (True, "passed", "")


def test_lifecycle_open_then_remediated() -> None:
    checker = _checker()
    bad = {**VM_OK, "public_ip": True}
    first = _by_control(checker.on_config(_change(bad)))["novacron-vm-no-public-ip"]
    again = _by_control(checker.on_config(_change(bad, minutes=1)))["novacron-vm-no-public-ip"]
    fixed = _by_control(checker.on_config(_change(VM_OK, minutes=2)))["novacron-vm-no-public-ip"]
    later = _by_control(checker.on_config(_change(VM_OK, minutes=3)))["novacron-vm-no-public-ip"]
    assert [first.status, again.status, fixed.status, later.status] == [
        "open", "open", "remediated", "passed"]
    assert fixed.passed and checker.tracker.open_violations() == []


def test_accepted_violations_stay_accepted_until_they_expire() -> None:
    checker = _checker()
    bad = {**VM_OK, "monitoring": False}
    checker.on_config(_change(bad))
    assert checker.accept("vm-1", "novacron-vm-monitoring", by="olga", reason="batch host",
                          until=T0 + timedelta(hours=1), now=T0)
    during = _by_control(checker.on_config(_change(bad, minutes=30)))["novacron-vm-monitoring"]
    after = _by_control(checker.on_config(_change(bad, minutes=90)))["novacron-vm-monitoring"]
    assert (during.status, during.passed) == ("accepted", False)
    assert after.status == "open"


def test_accepting_unknown_or_manual_controls_is_refused() -> None:
    with pytest.raises(RejectedError, match="unknown control"):
        _checker().accept("vm-9", "no-such-control", by="x", reason="why not")
    with pytest.raises(RejectedError, match="manual control"):
        _checker().accept("vm-9", "org-security-policy", by="x", reason="why not")


def test_deleting_a_resource_remediates_its_open_violations() -> None:
    checker = _checker()
    checker.on_config(_change({**VM_OK, "public_ip": True, "disk_encrypted": False}))
    results = checker.on_config(_change({}, minutes=1, op="delete"))
    assert {(r.control_id, r.status, r.passed) for r in results} == {
        ("novacron-vm-no-public-ip", "remediated", True),
        ("novacron-vm-disk-encrypted", "remediated", True)}
    assert checker.on_config(_change({}, minutes=2, op="delete")) == []


def test_standards_filter_limits_controls_and_refs() -> None:
    checker = _checker(standards=["HIPAA"])
    results = checker.on_config(_change(VM_OK))
    ids = {r.control_id for r in results}
    assert "novacron-vm-owner-tag" not in ids  # no HIPAA mapping
    assert "novacron-vm-disk-encrypted" in ids
    assert all(ref.startswith("hipaa:") for r in results for ref in r.standards)


def test_passing_results_can_be_suppressed() -> None:
    checker = _checker(emit_passed=False)
    assert checker.on_config(_change(VM_OK)) == []
    (only,) = checker.on_config(_change({**VM_OK, "monitoring": False}, minutes=1))
    assert only.control_id == "novacron-vm-monitoring"
    (fixed,) = checker.on_config(_change(VM_OK, minutes=2))
    assert fixed.status == "remediated"  # a transition is always reported


def test_unknown_types_produce_no_results(shared_checker: ComplianceChecker) -> None:
    assert shared_checker.on_config(_change({"x": 1}, rtype="random_id", rid="r")) == []


def test_evaluation_errors_fail_closed() -> None:
    def broken(rtype: str, config: Any) -> set[str]:
        raise ValueError("bad input")

    checker = ComplianceChecker(library=LIBRARY, evaluator=FakeEvaluator(broken))
    results = checker.on_config(_change(VM_OK))
    assert results and all(not r.passed and "failing closed" in r.message for r in results)


def test_remediation_decision_for_auto_remediable_controls() -> None:
    checker = _checker()
    results = _by_control(checker.on_config(_change({**VM_OK, "monitoring": False,
                                                     "disk_encrypted": False})))
    medium = checker.remediation(results["novacron-vm-monitoring"])
    high = checker.remediation(results["novacron-vm-disk-encrypted"])
    assert medium is not None and high is not None
    assert medium.origin == "compliance" and medium.decision_type == "remediate_compliance"
    assert medium.params["merge_patch"] == {"monitoring": True}
    assert medium.causation_id == results["novacron-vm-monitoring"].event_id
    assert not medium.requires_approval and high.requires_approval  # HIGH needs a person
    assert checker.remediation(results["novacron-vm-owner-tag"]) is None  # passed


def test_no_remediation_without_a_safe_fix() -> None:
    checker = _checker()
    sg = {**VM_OK, "security_groups": [{"port": 22, "cidr": "0.0.0.0/0", "protocol": "tcp"}]}
    result = _by_control(checker.on_config(_change(sg)))["novacron-vm-no-public-admin-ports"]
    assert not result.passed and checker.remediation(result) is None


def test_snapshot_restore_keeps_the_lifecycle() -> None:
    checker = _checker()
    checker.on_config(_change({**VM_OK, "monitoring": False}))
    record = checker.accept("vm-1", "novacron-vm-monitoring", by="olga", reason="batch",
                            until=T0 + timedelta(days=1), now=T0)
    clone = _checker()
    clone.restore(checker.snapshot())
    clone.on_attestation(record)  # acceptances come back from the compacted topic
    again = _by_control(clone.on_config(_change({**VM_OK, "monitoring": False}, minutes=5)))
    assert again["novacron-vm-monitoring"].status == "accepted"
    assert clone.snapshot() == checker.snapshot()


def test_scan_scores_requested_standard(shared_checker: ComplianceChecker) -> None:
    report = shared_checker.scan(
        [Resource("vm-1", "novacron_vm", VM_OK),
         Resource("vm-2", "novacron_vm", {**VM_OK, "disk_encrypted": False})], "pci")
    pci = report.standards["pci-dss"]
    assert list(report.standards) == ["pci-dss"]
    assert [v.resource_id for v in pci.violations if v.resource_type != "manual"] == ["vm-2"]
    # the agent consults its attestation store: manual controls count, none attested yet
    assert {v.status for v in pci.violations if v.resource_type == "manual"} == {"not_attested"}
    assert pci.score is not None and 0 < pci.score < 100


def test_scan_defaults_to_configured_standards() -> None:
    report = _checker(standards=["gdpr", "soc2"]).scan([Resource("vm-1", "novacron_vm", VM_OK)])
    assert list(report.standards) == ["gdpr", "soc2"]


def test_config_rejects_unknown_standards() -> None:
    with pytest.raises(ValueError, match="unknown standard"):
        ComplianceConfig(standards=["fedramp"])


def _attestation(control: str, *, days: int = 30, revoked: bool = False,
                 kind: str = "attestation", resource: str = "*") -> ComplianceAttestation:
    return ComplianceAttestation(
        kind=kind, control_id=control, resource_id=resource, by="ana", revoked=revoked,  # type: ignore[arg-type]
        statement="reviewed and approved", evidence_url="https://wiki.example.com/isp",
        expires_at=T0 + timedelta(days=days), event_time=T0)


def test_an_attestation_passes_its_manual_control_until_it_expires() -> None:
    checker = _checker()
    (result,) = checker.on_attestation(_attestation("org-security-policy"))
    assert (result.control_id, result.passed, result.status) == (
        "org-security-policy", True, "passed")
    assert result.resource_id == "organisation" and "attested by ana" in result.message
    assert checker.expire(T0 + timedelta(days=29)) == []
    (expired,) = checker.expire(T0 + timedelta(days=31))
    assert (expired.passed, expired.status) == (False, "open")
    assert expired.causation_id == result.causation_id  # continues the attestation's chain
    assert checker.expire(T0 + timedelta(days=32)) == []  # reported once


def test_a_revoked_attestation_stops_counting() -> None:
    checker = _checker()
    checker.on_attestation(_attestation("org-security-policy"))
    (result,) = checker.on_attestation(_attestation("org-security-policy", revoked=True))
    assert (result.passed, result.status) == (False, "open")


def test_an_acceptance_applies_to_the_open_violation_at_once() -> None:
    checker = _checker()
    checker.on_config(_change({**VM_OK, "monitoring": False}))
    (result,) = checker.on_attestation(_attestation(
        "novacron-vm-monitoring", kind="acceptance", resource="*", days=1))
    assert (result.resource_id, result.status, result.passed) == ("vm-1", "accepted", False)
    (reopened,) = checker.expire(T0 + timedelta(days=2))
    assert (reopened.resource_id, reopened.status) == ("vm-1", "open")


def test_values_unknown_until_apply_produce_no_result() -> None:
    checker = _checker()
    results = checker.on_config(_change({**VM_OK, "disk_encrypted": {
        "__unknown__": "known after apply"}}))
    assert "novacron-vm-disk-encrypted" not in {r.control_id for r in results}
    assert checker.unknown_checks == 1
