"""Three-valued evaluation: a value known only after apply makes a check unknown, never failed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from policies.compliance import (
    UNKNOWN,
    AttestationStore,
    RegoEvaluator,
    Scanner,
    load_library,
    load_scan_input,
)

LIBRARY = load_library()
EVALUATOR = RegoEvaluator(LIBRARY)
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "compliance"


def _cases() -> list[tuple[str, str]]:
    return [(c.id, key) for c in LIBRARY.controls.values() if c.kind == "automated"
            for key in c.reads if key != "*"]


def _example(control_id: str) -> tuple[str, dict[str, Any], dict[str, Any]]:
    c = LIBRARY.get(control_id)
    assert c.examples is not None
    return (c.examples.resource_type or c.resource_types[0], c.examples.passing,
            c.examples.failing)


@pytest.mark.parametrize(("control_id", "key"), _cases())
def test_an_unknown_attribute_never_fails_a_passing_config(control_id: str, key: str) -> None:
    rtype, passing, _ = _example(control_id)
    verdicts = EVALUATOR.evaluate(rtype, {**passing, key: dict(UNKNOWN)})
    assert control_id not in verdicts.failing


@pytest.mark.parametrize(("control_id", "key"), _cases())
def test_an_unknown_attribute_never_passes_a_failing_config(control_id: str, key: str) -> None:
    # The attribute that made the example fail is now unknown: unknown (or still failing on
    # another known attribute), never a silent pass.
    rtype, _, failing = _example(control_id)
    verdicts = EVALUATOR.evaluate(rtype, {**failing, key: dict(UNKNOWN)})
    assert control_id in verdicts.failing | verdicts.unknown


def test_unknown_nested_values_propagate() -> None:
    # an unknown element inside a list or block is unknown too
    vm = {"ami": "ami-1", "metadata_options": [{"http_endpoint": "enabled",
                                                "http_tokens": dict(UNKNOWN)}]}
    verdicts = EVALUATOR.evaluate("aws_instance", vm)
    assert "aws-instance-imdsv2" in verdicts.unknown
    assert "aws-instance-imdsv2" not in verdicts.failing


def test_a_known_violation_stays_known_beside_an_unknown_rule() -> None:
    sg = {"name": "web", "ingress": [
        {"cidr_blocks": ["0.0.0.0/0"], "from_port": 22, "to_port": 22, "protocol": "tcp"},
        {"cidr_blocks": dict(UNKNOWN), "from_port": 443, "to_port": 443, "protocol": "tcp"}]}
    verdicts = EVALUATOR.evaluate("aws_security_group", sg)
    assert "aws-sg-no-public-ssh" in verdicts.failing
    assert "aws-sg-no-public-db-ports" in verdicts.unknown  # the unknown rule may open them


@pytest.mark.parametrize("value", ["(known after apply)", "14", None])
def test_strings_never_compare_as_numbers(value: Any) -> None:
    # regopy evaluates "(known after apply)" < 14 as true, OPA as false: the helpers compare
    # numbers only (numeric strings are converted; absent takes the provider default of 6).
    verdicts = EVALUATOR.evaluate("aws_iam_account_password_policy",
                                  {"minimum_password_length": value})
    fails = "aws-iam-password-length" in verdicts.failing
    assert fails is (value is None)


def test_plan_values_computed_at_apply_are_reported_as_unknown() -> None:
    scan = load_scan_input(FIXTURES / "plan_unknowns.json")
    report = Scanner(LIBRARY, EVALUATOR).scan(scan)
    unknown = {(v.resource_id, v.control_id) for s in report.standards.values()
               for v in s.unknown}
    failed = {(v.resource_id, v.control_id) for s in report.standards.values()
              for v in s.violations}
    expected = {
        ("aws_iam_account_password_policy.strict", "aws-iam-password-length"),
        ("aws_iam_account_password_policy.strict", "aws-iam-password-length-pci-dss"),
        ("aws_iam_account_password_policy.strict", "aws-iam-password-reuse"),
        ("aws_cloudwatch_log_group.app", "aws-log-group-retention"),
        ("aws_db_instance.orders", "aws-rds-backup-retention"),
        ("azurerm_storage_account.data", "azure-storage-blob-soft-delete"),
    }
    assert expected <= unknown
    assert not expected & failed
    assert failed == {("aws_cloudwatch_log_group.app", "aws-log-group-kms")}  # known: null
    cis = report.standards["cis"]
    assert cis.checks_unknown > 0 and cis.checks == (cis.checks_passed + cis.checks_failed
                                                      + cis.checks_unknown)


def test_unknown_checks_do_not_move_the_score() -> None:
    scan = load_scan_input(FIXTURES / "plan_unknowns.json")
    report = Scanner(LIBRARY, EVALUATOR).scan(scan, "hipaa", AttestationStore())
    for control in report.standards["hipaa"].controls:
        if control.unknown and not (control.passed or control.failed):
            assert control.score is None and control.status == "unknown"
