"""The attestation store: the latest attestation or risk acceptance per key, and lookups."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from schemas.attestations import ComplianceAttestation

__all__ = ["AttestationStore"]


class AttestationStore:
    """Folds records in log order (the compacted topic's semantics: the latest per key wins)."""

    def __init__(self, records: Iterable[ComplianceAttestation] = ()) -> None:
        self._records: dict[str, ComplianceAttestation] = {}
        for r in records:
            self.apply(r)

    def apply(self, record: ComplianceAttestation) -> None:
        self._records[record.key] = record

    def __len__(self) -> int:
        return len(self._records)

    def records(self) -> list[ComplianceAttestation]:
        """Every record in force or not (revoked and expired ones included), by key."""
        return [self._records[k] for k in sorted(self._records)]

    def attestation(self, control_id: str, now: datetime) -> ComplianceAttestation | None:
        """The attestation of a manual control that counts at `now`."""
        found = self._records.get(f"attestation/{control_id}/*")
        return found if found is not None and found.active(now) else None

    def acceptance(
        self, control_id: str, resource_id: str, now: datetime
    ) -> ComplianceAttestation | None:
        """The risk acceptance covering this resource's violation at `now` (its own, or `*`)."""
        for rid in (resource_id, "*"):
            found = self._records.get(f"acceptance/{control_id}/{rid}")
            if found is not None and found.active(now):
                return found
        return None

    def latest(self, kind: str, control_id: str, resource_id: str = "*"
               ) -> ComplianceAttestation | None:
        """The latest record for a key, whether it counts or not (for reports: expired ...)."""
        return self._records.get(f"{kind}/{control_id}/{resource_id}")
