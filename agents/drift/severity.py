"""Severity of a drift (SPEC §4.4) and the default security-sensitive paths and resource types."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = [
    "DEFAULT_SENSITIVE_PATHS",
    "DEFAULT_SENSITIVE_TYPES",
    "SeverityBands",
    "classify",
]

DEFAULT_SENSITIVE_PATHS: tuple[str, ...] = (
    # security groups and firewall rules
    "**/*security_group*",
    "**/ingress",
    "**/egress",
    "**/*firewall*",
    "**/network_acl*",
    "**/source_ranges",
    "**/cidr_blocks",
    "**/ipv6_cidr_blocks",
    "**/allowed_ips",
    # IAM and authorisation
    "**/iam*",
    "**/*_iam_*",
    "**/policy",
    "**/*_policy_document",
    "**/assume_role_policy",
    "**/role",
    "**/roles",
    "**/*_role",
    "**/*_role_arn",
    "**/service_account*",
    "**/serviceAccount*",
    "**/permissions",
    "**/principals",
    "**/rbac*",
    # encryption
    "**/*encrypt*",
    "**/kms*",
    "**/*_kms_*",
    "**/ssl*",
    "**/tls*",
    "**/*certificate*",
    # public access
    "**/*public*",
    "**/acl",
    "**/*_acl",
    "**/*_acls",
    "**/publicly_accessible",
    # credentials and authentication
    "**/*password*",
    "**/*secret*",
    "**/*credential*",
    "**/*token*",
    "**/*api_key*",
    "**/*access_key*",
    "**/*private_key*",
    "**/auth*",
    "**/*_auth",
    "**/mfa*",
)
"""Sensitive path patterns (case-insensitive): any change under them is CRITICAL."""

DEFAULT_SENSITIVE_TYPES: tuple[str, ...] = (
    "aws_security_group*",
    "aws_vpc_security_group_*",
    "aws_network_acl*",
    "aws_iam_*",
    "aws_kms_*",
    "aws_s3_bucket_public_access_block",
    "aws_s3_bucket_policy",
    "aws_s3_bucket_server_side_encryption_configuration",
    "aws_secretsmanager_*",
    "google_compute_firewall*",
    "google_*_iam_*",
    "google_kms_*",
    "azurerm_network_security_*",
    "azurerm_role_*",
    "azurerm_key_vault*",
    "kubernetes_secret*",
    "kubernetes_role*",
    "kubernetes_cluster_role*",
    "kubernetes_network_policy*",
    "kubernetes_service_account*",
    "novacron_policy",
    "novacron_firewall*",
)
"""Resource types whose every change is security relevant (CRITICAL)."""


class SeverityBands(BaseModel):
    """Drift-ratio thresholds (strictly greater than) of SPEC §4.4."""

    model_config = ConfigDict(frozen=True)

    critical: float = Field(default=0.50, ge=0, le=1)
    """Above this share of drifted leaf fields: CRITICAL."""
    high: float = Field(default=0.25, ge=0, le=1)
    """Above this: HIGH."""
    medium: float = Field(default=0.10, ge=0, le=1)
    """Above this: MEDIUM."""
    low: float = Field(default=0.05, ge=0, le=1)
    """Above this: LOW; at or below: INFO."""

    @model_validator(mode="after")
    def _ordered(self) -> SeverityBands:
        if not self.critical >= self.high >= self.medium >= self.low:
            raise ValueError("severity bands must satisfy critical >= high >= medium >= low")
        return self


def classify(ratio: float, sensitive: bool, bands: SeverityBands | None = None) -> str:
    """Severity of a drift with this drifted share; sensitive changes are always CRITICAL."""
    b = bands or SeverityBands()
    if sensitive or ratio > b.critical:
        return "CRITICAL"
    if ratio > b.high:
        return "HIGH"
    if ratio > b.medium:
        return "MEDIUM"
    if ratio > b.low:
        return "LOW"
    return "INFO"
