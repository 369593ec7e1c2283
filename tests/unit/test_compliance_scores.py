"""The documented score method: per control, per resource, weighted by severity."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from policies.compliance import SEVERITY_WEIGHTS, AttestationStore, load_library
from policies.compliance.scoring import ScoredCheck, score_standard
from schemas.attestations import ComplianceAttestation

LIBRARY = load_library()
NOW = datetime(2026, 11, 2, tzinfo=UTC)


def _check(control: str, resource: str, status: str) -> ScoredCheck:
    return ScoredCheck(LIBRARY.get(control), resource, "aws_security_group", status)


def test_weights() -> None:
    assert SEVERITY_WEIGHTS == {"CRITICAL": 10, "HIGH": 5, "MEDIUM": 3, "LOW": 1, "INFO": 0}


def test_standard_score_is_the_severity_weighted_mean_of_control_scores() -> None:
    checks = [
        _check("aws-sg-no-public-ssh", "sg.a", "fail"),  # CRITICAL: 1 of 2 resources pass
        _check("aws-sg-no-public-ssh", "sg.b", "pass"),
        _check("aws-subnet-no-auto-public-ip", "subnet.a", "pass"),  # MEDIUM: all pass
        _check("aws-ebs-encrypted", "vol.a", "unknown"),  # HIGH: only unknown, not decided
    ]
    s = score_standard("pci-dss", checks, [], AttestationStore(), NOW)
    by_id = {c.control_id: c for c in s.controls}
    assert by_id["aws-sg-no-public-ssh"].score == 50.0
    assert by_id["aws-subnet-no-auto-public-ip"].score == 100.0
    assert by_id["aws-ebs-encrypted"].score is None and by_id["aws-ebs-encrypted"].status == (
        "unknown")
    assert s.score == round((10 * 50 + 3 * 100) / (10 + 3), 2)  # 61.54
    resources = {r.resource_id: r for r in s.resources}
    assert resources["sg.a"].score == 0.0 and resources["sg.b"].score == 100.0
    assert resources["vol.a"].score is None
    assert (s.checks, s.checks_passed, s.checks_failed, s.checks_unknown) == (4, 2, 1, 1)


def test_one_open_group_counts_once_per_control_not_per_finding() -> None:
    # four CRITICAL findings on one group beside 20 passing groups: each control scores 20/21
    checks = [_check(c, f"sg.{i}", "pass") for i in range(20)
              for c in ("aws-sg-no-public-ssh", "aws-sg-no-public-rdp")]
    checks += [_check(c, "sg.open", "fail") for c in ("aws-sg-no-public-ssh",
                                                      "aws-sg-no-public-rdp")]
    s = score_standard("gdpr", checks, [], AttestationStore(), NOW)
    assert s.score == round(100 * 20 / 21, 2)
    assert len(s.violations) == 2 and {v.resource_id for v in s.violations} == {"sg.open"}


def test_accepted_risks_are_listed_not_scored() -> None:
    store = AttestationStore([ComplianceAttestation(
        kind="acceptance", control_id="aws-sg-no-public-ssh", resource_id="sg.a", by="olu",
        statement="bastion host, reviewed", expires_at=NOW + timedelta(days=5))])
    checks = [_check("aws-sg-no-public-ssh", "sg.a", "fail"),
              _check("aws-sg-no-public-ssh", "sg.b", "pass")]
    s = score_standard("pci-dss", checks, [], store, NOW)
    assert [v.resource_id for v in s.accepted] == ["sg.a"] and s.violations == []
    assert s.score == 100.0
    later = score_standard("pci-dss", checks, [], store, NOW + timedelta(days=6))
    assert [v.resource_id for v in later.violations] == ["sg.a"] and later.score == 50.0


def test_manual_controls_count_while_attested() -> None:
    policy = LIBRARY.get("org-security-policy")
    attested = AttestationStore([ComplianceAttestation(
        kind="attestation", control_id=policy.id, by="ana", statement="approved by the board",
        evidence_url="https://docs.example.com/isp", expires_at=NOW + timedelta(days=1))])
    ok = score_standard("iso27001", [], [policy], attested, NOW)
    gone = score_standard("iso27001", [], [policy], attested, NOW + timedelta(days=2))
    missing = score_standard("iso27001", [], [policy], AttestationStore(), NOW)
    assert ok.score == 100.0 and ok.violations == []
    assert gone.score == missing.score == 0.0
    assert [v.status for v in gone.violations] == ["not_attested"]
    assert gone.violations[0].acceptance is not None  # the expired attestation is shown
