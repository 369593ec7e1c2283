"""The control model: a check, its Rego rule, remediation and framework mappings."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from schemas.errors import RejectedError
from schemas.findings import Severity

__all__ = ["STANDARDS", "STANDARD_TITLES", "Control", "Examples", "normalise_standard"]

STANDARDS: tuple[str, ...] = ("cis", "pci-dss", "hipaa", "soc2", "gdpr", "iso27001")
"""Framework keys, in report order."""

STANDARD_TITLES: dict[str, str] = {
    "cis": "CIS Benchmarks",
    "pci-dss": "PCI-DSS v4.0",
    "hipaa": "HIPAA Security Rule",
    "soc2": "SOC 2 (TSC 2017)",
    "gdpr": "GDPR",
    "iso27001": "ISO/IEC 27001:2022",
}

_ALIASES: dict[str, str] = {
    "pci": "pci-dss",
    "pcidss": "pci-dss",
    "pci_dss": "pci-dss",
    "soc-2": "soc2",
    "soc_2": "soc2",
    "iso": "iso27001",
    "iso-27001": "iso27001",
    "iso_27001": "iso27001",
    "cis-benchmarks": "cis",
}


def normalise_standard(name: str) -> str:
    """The canonical key of a standard name (`PCI`, `pci_dss` → `pci-dss`); rejects unknown ones."""
    key = name.strip().lower()
    key = _ALIASES.get(key, key)
    if key not in STANDARDS:
        raise RejectedError(f"unknown standard {name!r}; known: {', '.join(STANDARDS)}")
    return key


class Examples(BaseModel):
    """One passing and one failing resource config: the control's own test fixtures."""

    model_config = ConfigDict(frozen=True, populate_by_name=True)

    passing: dict[str, Any] = Field(alias="pass")
    """A config that satisfies the control."""
    failing: dict[str, Any] = Field(alias="fail")
    """A config that violates it."""
    resource_type: str | None = Field(default=None, alias="type")
    """Type the examples are (default: the control's first resource type)."""


class Control(BaseModel):
    """One compliance control, checked per resource by a rule in its Rego package."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{2,100}$")
    """Stable id (lowercase slug), the string the Rego rule adds to `deny`."""
    title: str = Field(min_length=5, max_length=200)
    """What must hold, as a sentence."""
    severity: Severity
    """Severity of a violation."""
    resource_types: list[str] = Field(min_length=1)
    """Terraform-style types the control applies to."""
    remediation: str = Field(min_length=5, max_length=4096)
    """How to fix a violation."""
    frameworks: dict[str, list[str]] = Field(default_factory=dict)
    """Standard key → requirement references (`pci-dss: ["3.5.1"]`)."""
    rule: str = ""
    """Rego package holding the rule (set by the loader from the file name)."""
    description: str = ""
    """Why the control matters (optional)."""
    auto_remediation: dict[str, Any] | None = None
    """A JSON merge patch (RFC 7386) that fixes the config; only for safe, idempotent fixes."""
    examples: Examples | None = None
    """Fixtures: a passing and a failing config."""

    @field_validator("frameworks")
    @classmethod
    def _known_standards(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for name, refs in value.items():
            try:
                key = normalise_standard(name)
            except RejectedError as exc:  # pydantic reports ValueErrors as validation errors
                raise ValueError(str(exc)) from exc
            out[key] = [str(r) for r in refs]
        return out

    def maps_to(self, standard: str | None) -> bool:
        """Whether the control counts for `standard` (None: any)."""
        return standard is None or bool(self.frameworks.get(standard))

    def refs(self, standard: str | None = None) -> list[str]:
        """`standard:reference` strings (all standards when None), as in ComplianceResult."""
        keys = STANDARDS if standard is None else (standard,)
        return [f"{k}:{ref}" for k in keys for ref in self.frameworks.get(k, [])]
