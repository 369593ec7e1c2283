"""Control API routes for compliance: attestations and risk acceptances (mounted by ControlApi).

POST records are returned as ComplianceAttestation events for the host to publish to the
compacted `compliance-attestations` topic; the compliance host folds that topic into its store,
so a record written through the API, the CLI or by another instance is seen the same way.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, Field

from agents.access import ApiSubject
from agents.api_routes import Route
from policies.compliance import AttestationStore, ControlLibrary
from schemas import Event
from schemas.attestations import ComplianceAttestation
from schemas.envelope import utc_now

__all__ = ["ComplianceApi"]

SOURCE = "novacron.control-api"
Response = tuple[int, dict[str, Any]]
MAX_DAYS = 3 * 365  # nothing is attested or accepted for more than three years


class AttestBody(BaseModel):
    """Body of POST /compliance/attestations."""

    control_id: str
    statement: str = Field(min_length=3, max_length=4096)
    evidence_url: str = Field(min_length=8, max_length=2048)
    expires_at: datetime | None = None
    days: int | None = Field(default=None, ge=1, le=MAX_DAYS)


class AcceptBody(BaseModel):
    """Body of POST /compliance/acceptances."""

    control_id: str
    resource_id: str = Field(default="*", min_length=1, max_length=512)
    reason: str = Field(min_length=3, max_length=4096)
    evidence_url: str = ""
    expires_at: datetime | None = None
    days: int | None = Field(default=None, ge=1, le=MAX_DAYS)


class RevokeBody(BaseModel):
    """Body of POST /compliance/revocations."""

    kind: Literal["attestation", "acceptance"]
    control_id: str
    resource_id: str = "*"
    reason: str = Field(default="revoked", min_length=3, max_length=4096)


class ComplianceApi:
    """Routes under /compliance: list, attest, accept, revoke."""

    routes = (
        Route("GET", "/compliance/attestations", "read", "attestation", "_list",
              "Attestations and risk acceptances, with whether each counts now"),
        Route("POST", "/compliance/attestations", "approve", "attestation", "_attest",
              "Attest a manual control (who, evidence link, expiry)", AttestBody),
        Route("POST", "/compliance/acceptances", "approve", "risk_acceptance", "_accept",
              "Accept the risk of a control's violations (one resource or *)", AcceptBody),
        Route("POST", "/compliance/revocations", "approve", "attestation", "_revoke",
              "Withdraw an attestation or acceptance", RevokeBody),
    )

    def __init__(self, library: ControlLibrary, store: AttestationStore) -> None:
        self.library, self.store = library, store
        self._outbox: list[Event] = []

    def drain_events(self) -> list[Event]:
        events, self._outbox = self._outbox, []
        return events

    def _list(self, **_: Any) -> Response:
        now = utc_now()
        return 200, {"records": [{**r.model_dump(mode="json"), "active": r.active(now)}
                                 for r in self.store.records()]}

    def _attest(self, subject: ApiSubject, body: AttestBody, **_: Any) -> Response:
        control = self.library.controls.get(body.control_id)
        if control is None or control.kind != "manual":
            return 404, {"error": f"no manual control {body.control_id!r}"}
        return self._record(ComplianceAttestation(
            kind="attestation", control_id=control.id, by=subject.user,
            statement=body.statement, evidence_url=body.evidence_url,
            expires_at=_expiry(body.expires_at, body.days), source=SOURCE))

    def _accept(self, subject: ApiSubject, body: AcceptBody, **_: Any) -> Response:
        control = self.library.controls.get(body.control_id)
        if control is None or control.kind != "automated":
            return 404, {"error": f"no automated control {body.control_id!r}"}
        return self._record(ComplianceAttestation(
            kind="acceptance", control_id=control.id, resource_id=body.resource_id,
            by=subject.user, statement=body.reason, evidence_url=body.evidence_url,
            expires_at=_expiry(body.expires_at, body.days), source=SOURCE))

    def _revoke(self, subject: ApiSubject, body: RevokeBody, **_: Any) -> Response:
        current = self.store.latest(body.kind, body.control_id, body.resource_id)
        if current is None:
            return 404, {"error": f"no {body.kind} for {body.control_id}/{body.resource_id}"}
        kept = current.model_dump(exclude={"event_id", "event_time", "source", "correlation_id",
                                           "causation_id", "revoked", "by", "statement"})
        return self._record(ComplianceAttestation(
            **kept, revoked=True, by=subject.user, statement=body.reason, source=SOURCE))

    def _record(self, record: ComplianceAttestation) -> Response:
        self._outbox.append(record)
        return 201, record.model_dump(mode="json")


def _expiry(expires_at: datetime | None, days: int | None) -> datetime:
    """An explicit expiry (at most three years ahead) or `days` from now; one is required."""
    now = utc_now()
    if expires_at is None and days is None:
        raise ValueError("give expires_at or days: nothing is attested or accepted for good")
    when = expires_at if expires_at is not None else now + timedelta(days=days or 0)
    if when.tzinfo is None:
        raise ValueError("expires_at needs a time zone (e.g. 2027-01-31T00:00:00Z)")
    if not now < when <= now + timedelta(days=MAX_DAYS):
        raise ValueError("expires_at must be in the future and within three years")
    return when
