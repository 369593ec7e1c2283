"""Policy types and enforcement modes: plain constants with no dependencies (the Terraform
provider's own small virtualenv imports them)."""

from __future__ import annotations

__all__ = ["ENFORCEMENTS", "POLICY_TYPES"]

POLICY_TYPES = (
    "access",
    "resource_allocation",
    "compliance",
    "security",
    "network",
    "data_governance",
    "action_safety",
    "infrastructure",
)
"""Policy types the registry accepts (`infrastructure`: judges Terraform plans before apply; the
decision gate does not run it)."""

ENFORCEMENTS = ("block", "warn", "audit")
"""Enforcement modes."""
