"""Findings and failures: configuration drift, compliance results and dead letters."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from schemas.edge import (
    Bool,
    Float,
    Identifier,
    IdentifierList,
    Int,
    JsonList,
    TextList,
)
from schemas.envelope import Event

__all__ = ["SEVERITIES", "ComplianceResult", "DeadLetter", "DriftFinding"]

SEVERITIES: tuple[str, ...] = ("CRITICAL", "HIGH", "MEDIUM", "LOW", "INFO")
Severity = Literal["CRITICAL", "HIGH", "MEDIUM", "LOW", "INFO"]


class DriftFinding(Event):
    """A resource whose configuration differs from its declared baseline."""

    event_type = "DriftFinding"
    topic = "drift"

    resource_id: Identifier = Field(min_length=1, max_length=512)
    """Drifted resource."""
    resource_type: Identifier = Field(default="", max_length=128)
    """Its type."""
    severity: Severity
    """CRITICAL, HIGH, MEDIUM, LOW or INFO (SPEC §4.4)."""
    drift_ratio: Float = Field(ge=0, le=1)
    """Share of leaf fields that drifted."""
    changed_fields: TextList = Field(default_factory=list)
    """RFC 6901 JSON pointers of the drifted fields."""
    changes: JsonList = Field(default_factory=list)
    """Each change: path, op (added/removed/changed), old, new."""
    baseline_hash: Identifier = Field(default="", max_length=128)
    """SHA-256 of the canonical baseline."""
    current_hash: Identifier = Field(default="", max_length=128)
    """SHA-256 of the canonical current config."""
    baseline_revision: Identifier | None = Field(default=None, max_length=128)
    """Git commit or origin of the baseline."""
    status: Literal["open", "remediated", "accepted"] = "open"
    """Lifecycle of the finding."""


class ComplianceResult(Event):
    """The result of one compliance control on one resource."""

    event_type = "ComplianceResult"
    topic = "compliance"

    resource_id: Identifier = Field(min_length=1, max_length=512)
    """Checked resource."""
    resource_type: Identifier = Field(default="", max_length=128)
    """Its type."""
    control_id: Identifier = Field(min_length=1, max_length=128)
    """Control that was checked."""
    standards: IdentifierList = Field(default_factory=list)
    """Framework references the control maps to (e.g. `cis:2.1.1`, `pci-dss:3.4`)."""
    severity: Severity = "MEDIUM"
    """Severity of a violation of this control."""
    passed: Bool
    """Whether the resource satisfies the control."""
    status: Literal["passed", "open", "remediated", "accepted"] = "passed"
    """Violation lifecycle."""
    message: str = Field(default="", max_length=4096)
    """What is wrong, for people."""
    remediation: str = Field(default="", max_length=4096)
    """How to fix it."""


class DeadLetter(Event):
    """A record that could not be processed, with its original bytes and a readable reason."""

    event_type = "DeadLetter"
    topic = "dlq"

    source_topic: Identifier = Field(max_length=256)
    """Topic the record came from."""
    partition: Int = Field(ge=0)
    """Its partition."""
    offset: Int = Field(ge=0)
    """Its offset."""
    reason: str = Field(max_length=8192)
    """Why it was rejected, for people."""
    error_kind: Identifier = Field(default="invalid", max_length=32)
    """decode, schema, oversized, processing."""
    raw: bytes = b""
    """The original value bytes (truncated to the DLQ size limit)."""
    raw_size: Int = Field(default=0, ge=0)
    """Size of the original value in bytes."""
    source_key: str | None = Field(default=None, max_length=1024)
    """The original key, decoded leniently."""

    @property
    def key(self) -> str:
        return f"{self.source_topic}/{self.partition}"
