"""The policy gate's operational state: pending approvals, migration counters, incident flags.

Everything is kept per resource, so a host can checkpoint one resource's state to the role's
compacted state topic (`snapshot_key`), resume it on another worker (`restore_key`) and drop it
when its partition moves away (`forget_key`). Expiry times travel with the state: a pending
request restored after a restart still expires at the time it was given when it was raised.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import orjson

from runbooks.resolve import RefusedAction, ResolvedAction
from schemas import Approval, Decision
from schemas.errors import DecodeError

__all__ = ["GateState", "Pending"]

Resolve = Callable[[str, dict[str, Any]], ResolvedAction]


@dataclass(slots=True)
class Pending:
    """A decision waiting for a person: what was evaluated and the request that was raised."""

    decision: Decision
    approval: Approval
    resolved: ResolvedAction

    def view(self) -> dict[str, Any]:
        return {"decision": self.decision.model_dump(mode="json"),
                "approval": self.approval.model_dump(mode="json"),
                "resolved": self.resolved.to_dict()}

    @classmethod
    def of(cls, row: Mapping[str, Any], resolve: Resolve) -> Pending | None:
        """From `view()`; a row from before resolution is resolved now (None: refused)."""
        decision = Decision.model_validate(row["decision"])
        approval = Approval.model_validate(row["approval"])
        if "resolved" in row:
            return cls(decision, approval, ResolvedAction.from_dict(row["resolved"]))
        try:
            return cls(decision, approval, resolve(decision.decision_type, decision.params))
        except RefusedAction:  # it can no longer run as asked: it is dropped, not released
            return None


@dataclass
class GateState:
    """The gate's state of record, by request id and by resource."""

    pending: dict[str, Pending] = field(default_factory=dict)
    migrations: dict[str, deque[datetime]] = field(default_factory=dict)
    incidents: dict[str, datetime] = field(default_factory=dict)  # resource → flag expiry

    def resource_of(self, request_id: str) -> str | None:
        """The resource a pending request is about (None: not pending here)."""
        item = self.pending.get(request_id)
        return item.decision.resource_id if item else None

    # --- one resource ----------------------------------------------------------------------
    def snapshot_key(self, key: str, now: datetime, window: timedelta) -> bytes | None:
        """One resource's pending items, migrations within the window and a raised incident
        flag (None: nothing worth keeping)."""
        view: dict[str, Any] = {}
        pending = [p.view() for p in self.pending.values() if p.decision.resource_id == key]
        if pending:
            view["pending"] = pending
        times = [t.isoformat() for t in self.migrations.get(key, ()) if t > now - window]
        if times:
            view["migrations"] = times
        until = self.incidents.get(key)
        if until is not None and until > now:
            view["incident_until"] = until.isoformat()
        return orjson.dumps(view) if view else None

    def restore_key(self, key: str, blob: bytes, resolve: Resolve) -> None:
        """Resume one resource from `snapshot_key` bytes; DecodeError when they are unusable."""
        try:
            view = orjson.loads(blob)
            items = [Pending.of(row, resolve) for row in view.get("pending", ())]
            times = deque(datetime.fromisoformat(t) for t in view.get("migrations", ()))
            until = view.get("incident_until")
            flag = datetime.fromisoformat(until) if until else None
        except (orjson.JSONDecodeError, AttributeError, KeyError, TypeError, ValueError) as exc:
            raise DecodeError(f"gate state of {key!r} is unusable: {exc}") from exc
        self.forget_key(key)
        for item in items:
            if item is not None and item.decision.resource_id == key:
                self.pending[item.decision.event_id] = item
        if times:
            self.migrations[key] = times
        if flag is not None:
            self.incidents[key] = flag

    def forget_key(self, key: str) -> None:
        for rid in [r for r, p in self.pending.items() if p.decision.resource_id == key]:
            del self.pending[rid]
        self.migrations.pop(key, None)
        self.incidents.pop(key, None)

    # --- everything at once ------------------------------------------------------------------
    def snapshot(self) -> dict[str, Any]:
        """JSON-able state of every resource; see `restore`."""
        return {
            "pending": [p.view() for p in self.pending.values()],
            "migrations": {r: [t.isoformat() for t in ts] for r, ts in self.migrations.items()},
            "incidents": {r: t.isoformat() for r, t in self.incidents.items()},
        }

    def restore(self, state: Mapping[str, Any], resolve: Resolve) -> None:
        """Replace everything with a `snapshot`."""
        items = [Pending.of(row, resolve) for row in state.get("pending", [])]
        self.pending = {p.decision.event_id: p for p in items if p is not None}
        self.migrations = {r: deque(datetime.fromisoformat(t) for t in ts)
                           for r, ts in state.get("migrations", {}).items()}
        self.incidents = {r: datetime.fromisoformat(t)
                          for r, t in state.get("incidents", {}).items()}
