"""Per-framework parameters: PCI DSS v4.0 password thresholds are not CIS thresholds."""

from __future__ import annotations

from policies.compliance import RegoEvaluator, Resource, Scanner, load_library

LIBRARY = load_library()
SCANNER = Scanner(LIBRARY, RegoEvaluator(LIBRARY))
PCI_POLICY = {"minimum_password_length": 12, "password_reuse_prevention": 4,
              "max_password_age": 90, "require_numbers": True,
              "require_lowercase_characters": True, "require_uppercase_characters": False,
              "require_symbols": False}


def _violations(standard: str, config: dict[str, object]) -> set[str]:
    report = SCANNER.scan([Resource("aws_iam_account_password_policy.p",
                                    "aws_iam_account_password_policy", config)], standard)
    return {v.control_id for v in report.standards[standard].violations}


def test_a_pci_compliant_password_policy_passes_pci_dss() -> None:
    assert _violations("pci-dss", PCI_POLICY) == set()


def test_the_same_policy_fails_the_cis_thresholds() -> None:
    assert {"aws-iam-password-length", "aws-iam-password-reuse"} <= _violations("cis", PCI_POLICY)


def test_pci_thresholds_still_fail_weaker_policies() -> None:
    weak = {**PCI_POLICY, "minimum_password_length": 11, "password_reuse_prevention": 3,
            "require_numbers": False}
    assert _violations("pci-dss", weak) == {
        "aws-iam-password-length-pci-dss", "aws-iam-password-reuse-pci-dss",
        "aws-iam-password-complexity-pci-dss"}


def test_variants_split_the_frameworks_between_them() -> None:
    base, pci = LIBRARY.get("aws-iam-password-length"), LIBRARY.get(
        "aws-iam-password-length-pci-dss")
    assert base.params == {"min_length": 14} and pci.params == {"min_length": 12}
    assert "pci-dss" not in base.frameworks and set(pci.frameworks) == {"pci-dss"}
    assert pci.variant_of == base.id == base.base_id == pci.base_id
    assert pci.title == "The IAM password policy requires at least 12 characters"
    assert pci.frameworks["pci-dss"] == ["8.3.6"]
    # one query evaluates both variants
    params = LIBRARY.params_for("aws_iam_account_password_policy")
    assert params["aws-iam-password-length"] == {"aws-iam-password-length": {"min_length": 14},
                                                 "aws-iam-password-length-pci-dss": {
                                                     "min_length": 12}}
