"""The control model: a check, its Rego rule, remediation and framework mappings."""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from schemas.errors import RejectedError
from schemas.findings import Severity

__all__ = [
    "SEVERITY_WEIGHTS",
    "STANDARDS",
    "STANDARD_TITLES",
    "Control",
    "Examples",
    "normalise_standard",
    "split_cis_ref",
]

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

SEVERITY_WEIGHTS: dict[str, int] = {"CRITICAL": 10, "HIGH": 5, "MEDIUM": 3, "LOW": 1, "INFO": 0}
"""Weight of a control in a score (docs/compliance.md, "Scores"); INFO does not count."""

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

# `aws-1.5.0/2.1.1`: benchmark, version, recommendation. The version is part of every CIS
# reference: recommendation numbers move between benchmark versions.
_CIS_REF = re.compile(r"^([a-z][a-z0-9]*)-(\d+(?:\.\d+)+)/(\d+(?:\.\d+)*)$")
_REF_SHAPES: dict[str, re.Pattern[str]] = {
    "pci-dss": re.compile(r"^\d{1,2}(\.\d+){1,3}$"),
    "hipaa": re.compile(r"^164\.\d{3}(\([a-zA-Z0-9]+\)){0,4}$"),
    "soc2": re.compile(r"^(CC\d\.\d+|A1\.\d|C1\.\d|PI1\.\d|P\d\.\d)$"),
    "gdpr": re.compile(r"^Art\.\d{1,2}(\(\d\))?(\([a-z]\))?$"),
    "iso27001": re.compile(r"^A\.[5-8]\.\d{1,2}$"),
}


def normalise_standard(name: str) -> str:
    """The canonical key of a standard name (`PCI`, `pci_dss` → `pci-dss`); rejects unknown ones."""
    key = name.strip().lower()
    key = _ALIASES.get(key, key)
    if key not in STANDARDS:
        raise RejectedError(f"unknown standard {name!r}; known: {', '.join(STANDARDS)}")
    return key


def split_cis_ref(ref: str) -> tuple[str, str]:
    """`aws-1.5.0/2.1.1` → (`aws-1.5.0`, `2.1.1`); rejects references without a version."""
    found = _CIS_REF.match(ref)
    if found is None:
        raise RejectedError(
            f"CIS reference {ref!r} must name its benchmark version, e.g. aws-1.5.0/2.1.1"
        )
    return f"{found.group(1)}-{found.group(2)}", found.group(3)


def _check_ref(standard: str, ref: str) -> None:
    if standard == "cis":
        split_cis_ref(ref)
    elif not _REF_SHAPES[standard].match(ref):
        raise RejectedError(f"{standard} reference {ref!r} is not a {standard} requirement id")


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
    """One compliance control: automated (a Rego rule per resource) or manual (attested)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{2,100}$")
    """Stable id (lowercase slug), the string the Rego rule adds to `deny`."""
    title: str = Field(min_length=5, max_length=200)
    """What must hold, as a sentence (`{name}` placeholders take parameter values)."""
    severity: Severity
    """Severity of a violation."""
    kind: Literal["automated", "manual"] = "automated"
    """automated: checked per resource by Rego; manual: satisfied by a current attestation."""
    resource_types: list[str] = Field(default_factory=list)
    """Terraform-style types the control applies to (none for manual controls)."""
    reads: list[str] = Field(default_factory=list)
    """Top-level attributes the rule reads: an unknown value among them makes the verdict
    unknown (never a violation). `*` means the whole config."""
    remediation: str = Field(min_length=5, max_length=4096)
    """How to fix a violation (for manual controls: what evidence to attest)."""
    frameworks: dict[str, list[str]] = Field(default_factory=dict)
    """Standard key → requirement references (`pci-dss: ["3.5.1"]`, `cis: [aws-1.5.0/2.1.1]`)."""
    parameters: dict[str, dict[str, Any]] = Field(default_factory=dict)
    """Parameter → {default: value, <standard>: value}: thresholds that differ per framework."""
    params: dict[str, Any] = Field(default_factory=dict)
    """The parameter values of this control (set by the loader, one variant per value set)."""
    variant_of: str | None = None
    """The control id whose parameters this variant specialises (set by the loader)."""
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
                for ref in refs:
                    _check_ref(key, str(ref))
            except RejectedError as exc:  # pydantic reports ValueErrors as validation errors
                raise ValueError(str(exc)) from exc
            out[key] = [str(r) for r in refs]
        return out

    @model_validator(mode="after")
    def _kind_fits(self) -> Control:
        if self.kind == "automated" and not self.resource_types:
            raise ValueError("an automated control needs resource_types")
        if self.kind == "manual" and (self.resource_types or self.auto_remediation):
            raise ValueError("a manual control has no resource_types or auto_remediation")
        for name, values in self.parameters.items():
            if "default" not in values:
                raise ValueError(f"parameter {name!r} needs a default")
            for key in values:
                if key != "default":
                    normalise_standard(key)
        return self

    @property
    def base_id(self) -> str:
        """The id the Rego rule knows the control by (the variant's parent, or itself)."""
        return self.variant_of or self.id

    def maps_to(self, standard: str | None) -> bool:
        """Whether the control counts for `standard` (None: any)."""
        return standard is None or bool(self.frameworks.get(standard))

    def refs(self, standard: str | None = None) -> list[str]:
        """`standard:reference` strings (all standards when None), as in ComplianceResult."""
        keys = STANDARDS if standard is None else (standard,)
        return [f"{k}:{ref}" for k in keys for ref in self.frameworks.get(k, [])]

    @property
    def weight(self) -> int:
        return SEVERITY_WEIGHTS[self.severity]
