"""Compliance attestations and risk acceptances: people vouching for what a scan cannot see."""

from __future__ import annotations

from datetime import datetime
from typing import Literal, Self

from pydantic import Field, model_validator

from schemas.edge import Bool, Identifier
from schemas.envelope import Event

__all__ = ["ATTESTATION_TOPIC", "ComplianceAttestation"]

ATTESTATION_TOPIC = "compliance-attestations"
"""Compacted topic holding the latest record per key (kind/control/resource)."""


class ComplianceAttestation(Event):
    """An attestation of a manual control, or the acceptance of a violation's risk.

    Records are kept on a compacted topic keyed by `kind/control_id/resource_id`: the latest
    record for a key is the one in force; `revoked` withdraws it. Neither counts after
    `expires_at`.
    """

    event_type = "ComplianceAttestation"
    topic = ATTESTATION_TOPIC

    kind: Literal["attestation", "acceptance"]
    """attestation: a manual control is met; acceptance: a violation's risk is accepted."""
    control_id: str = Field(min_length=3, max_length=128, pattern=r"^[a-z0-9][a-z0-9-]+$")
    """The control attested or whose violation is accepted."""
    resource_id: Identifier = Field(default="*", min_length=1, max_length=512)
    """The resource an acceptance covers (`*`: every resource); `*` for attestations."""
    by: Identifier = Field(min_length=1, max_length=256)
    """Who attests or accepts (a person, recorded as given by the API token or CLI user)."""
    statement: str = Field(min_length=3, max_length=4096)
    """What is attested, or why the risk is accepted."""
    evidence_url: str = Field(default="", max_length=2048)
    """Link to the evidence (a ticket, a document); shown in reports, never fetched."""
    expires_at: datetime
    """When it stops counting (a review date); required, so nothing is accepted for good."""
    revoked: Bool = False
    """Withdrawn before its expiry."""

    @property
    def key(self) -> str:
        return f"{self.kind}/{self.control_id}/{self.resource_id}"

    @model_validator(mode="after")
    def _fits_kind(self) -> Self:
        if self.kind == "attestation":
            if self.resource_id != "*":
                raise ValueError("an attestation covers the whole organisation (resource_id '*')")
            if not self.evidence_url.startswith(("https://", "http://")):
                raise ValueError("an attestation needs an evidence_url (http or https link)")
        if self.evidence_url and not self.evidence_url.startswith(("https://", "http://")):
            raise ValueError("evidence_url must be an http or https link")
        if self.expires_at.tzinfo is None:
            raise ValueError("expires_at needs a time zone (UTC)")
        return self

    def active(self, now: datetime) -> bool:
        """Counts at `now`: not revoked and not expired."""
        return not self.revoked and now < self.expires_at
