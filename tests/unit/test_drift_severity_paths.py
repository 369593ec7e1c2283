"""Drift severity with fixed examples: every class of security-sensitive path (case, nesting,
arrays, added and removed keys) is CRITICAL whatever the drifted share, and each severity band
at and around its edge."""

from __future__ import annotations

from typing import Any

import pytest

from agents.drift import DriftConfig, DriftEngine
from agents.drift.severity import SeverityBands, classify

PLAIN = "aws_db_instance"
"""A resource type that is not security-sensitive as a whole: only its paths decide."""


def _engine() -> DriftEngine:
    return DriftEngine(DriftConfig(default_ignores=False))


def _base(**extra: Any) -> dict[str, Any]:
    """A resource of 100 plain leaves (one changed leaf is a 1 % drift) plus `extra`."""
    return {**{f"f{i:03d}": i for i in range(100)}, **extra}


def _severity(before: dict[str, Any], after: dict[str, Any], rtype: str = PLAIN) -> str:
    report = _engine().compare_configs(rtype, before, after)
    assert report.changes, "the example must drift"
    return str(report.severity)


@pytest.mark.parametrize(
    ("before", "after"),
    [
        ({"MasterUserPassword": "a"}, {"MasterUserPassword": "b"}),  # CloudFormation casing
        ({"master_password": "a"}, {"master_password": "b"}),
        ({"PASSWORD": "a"}, {"PASSWORD": "b"}),
        ({"DbSecretArn": "a"}, {"DbSecretArn": "b"}),
        ({"settings": {"Auth": {"mode": "a"}}}, {"settings": {"Auth": {"mode": "b"}}}),
        ({"a": {"b": {"c": {"ApiToken": "x"}}}}, {"a": {"b": {"c": {"ApiToken": "y"}}}}),
        ({"users": [{"name": "u", "Password": "a"}]}, {"users": [{"name": "u", "Password": "b"}]}),
        ({"ingress": [{"cidr_blocks": ["10.0.0.0/8"]}]},
         {"ingress": [{"cidr_blocks": ["0.0.0.0/0"]}]}),
        ({"net": {"Cidr_Blocks": ["10.0.0.0/8"]}}, {"net": {"Cidr_Blocks": ["0.0.0.0/0"]}}),
        ({"StorageEncrypted": True}, {"StorageEncrypted": False}),
        ({"kms_key_id": "k1"}, {"kms_key_id": "k2"}),
        ({"PubliclyAccessible": False}, {"PubliclyAccessible": True}),
        ({"iam_database_authentication_enabled": True},
         {"iam_database_authentication_enabled": False}),
        ({}, {"MasterUserPassword": "new"}),  # added
        ({"MasterUserPassword": "old"}, {}),  # removed
        ({"roles": ["reader"]}, {"roles": ["reader", "admin"]}),  # array grows
    ],
)
def test_a_change_under_a_sensitive_path_is_critical_at_any_share(
        before: dict[str, Any], after: dict[str, Any]) -> None:
    report = _engine().compare_configs(PLAIN, _base(**before), _base(**after))
    assert report.sensitive is True
    assert report.severity == "CRITICAL"


@pytest.mark.parametrize(
    ("before", "after"),
    [
        ({"f000": 0}, {"f000": 1}),
        ({"note": "password"}, {"note": "passwort"}),  # the word in a value, not a path
        ({"instance_class": "db.t3"}, {"instance_class": "db.m5"}),
        ({"items": [{"name": "a"}]}, {"items": [{"name": "b"}]}),
    ],
)
def test_a_small_change_elsewhere_is_info(before: dict[str, Any], after: dict[str, Any]) -> None:
    report = _engine().compare_configs(PLAIN, _base(**before), _base(**after))
    assert report.sensitive is False and report.severity == "INFO"


@pytest.mark.parametrize("rtype", ["aws_security_group", "aws_iam_role", "kubernetes_secret",
                                   "google_compute_firewall", "novacron_policy"])
def test_any_change_of_a_sensitive_resource_type_is_critical(rtype: str) -> None:
    assert _severity(_base(), _base(f000=-1), rtype) == "CRITICAL"


@pytest.mark.parametrize(
    ("changed", "severity"),
    [(5, "INFO"), (6, "LOW"), (10, "LOW"), (11, "MEDIUM"), (25, "MEDIUM"), (26, "HIGH"),
     (50, "HIGH"), (51, "CRITICAL")],
)
def test_severity_bands_at_and_around_each_edge(changed: int, severity: str) -> None:
    after = {f"f{i:03d}": (-1 if i < changed else i) for i in range(100)}
    assert _severity(_base(), after) == severity


@pytest.mark.parametrize(
    ("ratio", "severity"),
    [(0.0, "INFO"), (0.05, "INFO"), (0.0501, "LOW"), (0.1, "LOW"), (0.1001, "MEDIUM"),
     (0.25, "MEDIUM"), (0.2501, "HIGH"), (0.5, "HIGH"), (0.5001, "CRITICAL"), (1.0, "CRITICAL")],
)
def test_classify_is_strictly_greater_than_each_band(ratio: float, severity: str) -> None:
    assert classify(ratio, False) == severity
    assert classify(ratio, True) == "CRITICAL"


def test_custom_bands_are_used_and_must_be_ordered() -> None:
    bands = SeverityBands(critical=0.9, high=0.8, medium=0.7, low=0.6)
    assert [classify(r, False, bands) for r in (0.6, 0.61, 0.71, 0.81, 0.91)] == [
        "INFO", "LOW", "MEDIUM", "HIGH", "CRITICAL"]
    with pytest.raises(ValueError, match="ordered|bands"):
        SeverityBands(critical=0.1, high=0.2)
    SeverityBands(critical=0.3, high=0.3, medium=0.3, low=0.3)  # equal bands are allowed
