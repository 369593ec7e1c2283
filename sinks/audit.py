"""The hash-chained audit log: pure row building and verification (tampering is detectable)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

import orjson

from schemas.envelope import Event, utc_now
from sinks.rows import format_datetime

__all__ = ["AUDITED_TYPES", "GENESIS", "AuditChain", "AuditRow", "audit_entry_for", "verify_chain"]

GENESIS = "0" * 64
"""prev_hash of the first row."""

AUDITED_TYPES: dict[str, tuple[str, str]] = {
    "Decision": ("source", "resource_id"),
    "PolicyVerdict": ("source", "decision_id"),
    "Approval": ("by", "request_id"),
    "Action": ("source", "action_id"),
    "Outcome": ("source", "action_id"),
    "PolicyVersion": ("author", "policy_id"),
    "DesiredState": ("author", "resource_id"),
    "DriftFinding": ("source", "resource_id"),
    "ComplianceResult": ("source", "resource_id"),
    "GitSync": ("author", "commit"),
    "ModelPromotion": ("source", "candidate"),
}
"""Event types that get an audit row: type → (actor field, subject field)."""


@dataclass(frozen=True)
class AuditRow:
    """One audit-log row; `hash` = sha256(prev_hash + canonical JSON of the other fields)."""

    seq: int
    time: str
    actor: str
    kind: str
    subject_id: str
    correlation_id: str
    details: str
    prev_hash: str
    hash: str

    def as_dict(self) -> dict[str, Any]:
        """The row for `Backend.insert_rows`."""
        return asdict(self)


def _canonical(fields: Mapping[str, Any]) -> bytes:
    body = {k: fields[k] for k in sorted(fields) if k != "hash"}
    return orjson.dumps(body, option=orjson.OPT_SORT_KEYS)


def row_hash(fields: Mapping[str, Any]) -> str:
    """The hash a row must carry given its other fields (prev_hash included)."""
    return hashlib.sha256(str(fields["prev_hash"]).encode() + _canonical(fields)).hexdigest()


class AuditChain:
    """Builds chained rows. One writer per chain: resume it from the stored tail on start."""

    def __init__(self, last_seq: int = 0, last_hash: str = GENESIS):
        self.last_seq = last_seq
        self.last_hash = last_hash

    @classmethod
    def resume(cls, tail: Mapping[str, Any] | None) -> AuditChain:
        """Continue after the stored row with the highest seq (None: start a new chain)."""
        return cls() if tail is None else cls(int(tail["seq"]), str(tail["hash"]))

    def append(
        self,
        *,
        actor: str,
        kind: str,
        subject_id: str,
        correlation_id: str = "",
        details: Mapping[str, Any] | None = None,
        time: datetime | None = None,
    ) -> AuditRow:
        """Build the next row and advance the chain."""
        fields: dict[str, Any] = {
            "seq": self.last_seq + 1,
            "time": format_datetime(time or utc_now()),
            "actor": actor,
            "kind": kind,
            "subject_id": subject_id,
            "correlation_id": correlation_id,
            "details": orjson.dumps(dict(details or {}), option=orjson.OPT_SORT_KEYS).decode(),
            "prev_hash": self.last_hash,
        }
        row = AuditRow(**fields, hash=row_hash(fields))
        self.last_seq, self.last_hash = row.seq, row.hash
        return row


def audit_entry_for(event: Event) -> dict[str, Any] | None:
    """Keyword arguments of `AuditChain.append` for an audited event (None if not audited)."""
    fields = AUDITED_TYPES.get(event.event_type)
    if fields is None:
        return None
    actor, subject = fields
    details = event.model_dump(mode="json", exclude={"rego", "config", "changes", "output",
                                                     "manifest"})
    return {
        "actor": str(getattr(event, actor) or event.source),
        "kind": event.event_type,
        "subject_id": str(getattr(event, subject)),
        "correlation_id": event.correlation_id,
        "details": details,
        "time": event.event_time,
    }


def verify_chain(rows: Iterable[Mapping[str, Any]], start_hash: str = GENESIS) -> list[str]:
    """Problems found in rows ordered by seq: gaps, broken links, rows whose hash is wrong."""
    problems: list[str] = []
    prev_hash, prev_seq = start_hash, None
    for row in rows:
        seq = int(row["seq"])
        if prev_seq is not None and seq != prev_seq + 1:
            problems.append(f"seq {seq}: expected seq {prev_seq + 1} (rows missing or duplicated)")
        if row["prev_hash"] != prev_hash:
            problems.append(f"seq {seq}: prev_hash does not match the previous row's hash")
        if row_hash(row) != row["hash"]:
            problems.append(f"seq {seq}: hash does not match the row's content (row altered)")
        prev_hash, prev_seq = str(row["hash"]), seq
    return problems
