"""Violation lifecycle per (resource, control): open → remediated, or open → accepted."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from schemas.attestations import ComplianceAttestation

__all__ = ["Status", "Transition", "ViolationTracker"]

Status = Literal["passed", "open", "remediated", "accepted"]


@dataclass(frozen=True, slots=True)
class Transition:
    """The status to report for one observation and whether it changed the lifecycle."""

    status: Status
    changed: bool


@dataclass(slots=True)
class _Record:
    status: Literal["open", "accepted"]
    accepted_by: str = ""
    reason: str = ""
    until: datetime | None = None  # an acceptance expires: the risk is reviewed again


class ViolationTracker:
    """Remembers open and accepted violations; forgets them once they pass (remediated).

    Acceptances come from the attestation store (a compacted topic); the tracker records which
    one was in force, so an expired acceptance reopens the violation.
    """

    def __init__(self) -> None:
        self._records: dict[tuple[str, str], _Record] = {}

    def observe(
        self,
        resource_id: str,
        control_id: str,
        passed: bool,
        now: datetime,
        acceptance: ComplianceAttestation | None = None,
    ) -> Transition:
        """Fold one evaluation into the lifecycle and return the status to report."""
        key = (resource_id, control_id)
        record = self._records.get(key)
        if passed:
            if record is None:
                return Transition("passed", False)
            del self._records[key]
            return Transition("remediated", True)
        if acceptance is not None and acceptance.active(now):
            accepted = _Record("accepted", acceptance.by, acceptance.statement,
                               acceptance.expires_at)
            self._records[key] = accepted
            return Transition("accepted", record is None or record.status != "accepted")
        changed = record is None or record.status != "open"
        self._records[key] = _Record("open")
        return Transition("open", changed)

    def expired(self, now: datetime) -> list[tuple[str, str]]:
        """Accepted violations whose acceptance ran out: they are open again."""
        out = []
        for key, rec in sorted(self._records.items()):
            if rec.status == "accepted" and rec.until is not None and now >= rec.until:
                self._records[key] = _Record("open")
                out.append(key)
        return out

    def forget(self, resource_id: str) -> list[str]:
        """Drop a deleted resource's violations; returns their control ids."""
        keys = [k for k in self._records if k[0] == resource_id]
        for k in keys:
            del self._records[k]
        return sorted(k[1] for k in keys)

    def status(self, resource_id: str, control_id: str) -> Status:
        record = self._records.get((resource_id, control_id))
        return "passed" if record is None else record.status

    def open_violations(self) -> list[tuple[str, str, str]]:
        """(resource id, control id, status) of every open or accepted violation."""
        return sorted((r, c, rec.status) for (r, c), rec in self._records.items())

    def snapshot(self) -> dict[str, Any]:
        return {
            "records": [
                [r, c, rec.status, rec.accepted_by, rec.reason,
                 rec.until.isoformat() if rec.until else None]
                for (r, c), rec in sorted(self._records.items())
            ]
        }

    def restore(self, state: dict[str, Any]) -> None:
        self._records = {
            (r, c): _Record(s, by, reason, datetime.fromisoformat(u) if u else None)
            for r, c, s, by, reason, u in state.get("records", [])
        }
