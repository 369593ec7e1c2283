"""The compliance checker as a host agent: one resource's violation lifecycle is one key."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from agents.compliance import ComplianceChecker, ComplianceConfig
from agents.contract import AgentBase, Examples, refuse
from agents.shared import SharedState
from schemas import ConfigChange, Event
from schemas.errors import DecodeError

__all__ = ["ComplianceAgent"]

Records = list[list[Any]]  # ViolationTracker.snapshot()["records"] rows: [resource, control, ...]


class ComplianceAgent(AgentBase):
    """Config changes in; results and remediation proposals out; lifecycles kept per resource."""

    name = "compliance"
    inputs = (ConfigChange,)

    def __init__(self, checker: ComplianceChecker) -> None:
        self.checker = checker
        self.shared: SharedState | None = None  # attestations from the followed topic
        self._by_resource: dict[str, Records] | None = None  # snapshot rows, built once a batch
        self._restored: dict[str, Records] = {}  # merged into the tracker in one pass

    @classmethod
    def of(cls, config: ComplianceConfig, shared: SharedState | None = None) -> ComplianceAgent:
        """An agent whose checker reads the process's attestations (the followed topic)."""
        checker = ComplianceChecker(config)
        agent = cls(checker)
        if shared is not None:
            checker.attestations = shared.attestations
            agent.shared = shared
        return agent

    def tick(self, now: datetime) -> list[Event]:
        """New attestation records and expiries become results (and remediation proposals)."""
        self._merge()
        self._by_resource = None
        records = self.shared.take_attestations() if self.shared is not None else []
        results = [r for rec in records for r in self.checker.on_attestation(rec, now)]
        results += self.checker.expire(now)
        decisions = [d for r in results if (d := self.checker.remediation(r)) is not None]
        return [*results, *decisions]

    def handle(self, event: Event) -> list[Event]:
        if not isinstance(event, ConfigChange):
            refuse(self, event)
        self._merge()
        self._by_resource = None
        results = self.checker.on_config(event)
        decisions = [d for r in results if (d := self.checker.remediation(r)) is not None]
        return [*results, *decisions]

    def state_key(self, event: Event) -> str | None:
        return event.resource_id if isinstance(event, ConfigChange) else None

    def snapshot(self, key: str) -> bytes | None:
        """The resource's open and accepted violations; None when it has none."""
        rows = self._rows().get(key)
        return orjson.dumps(rows) if rows else None

    def restore(self, key: str, blob: bytes) -> None:
        try:
            rows = orjson.loads(blob)
        except orjson.JSONDecodeError as exc:
            raise DecodeError(f"compliance state of {key} is not JSON: {exc}") from exc
        if not isinstance(rows, list) or any(not isinstance(r, list) or r[:1] != [key]
                                             for r in rows):
            raise DecodeError(f"compliance state of {key} holds rows of other resources")
        self._restored[key] = rows
        self._by_resource = None

    def forget(self, key: str) -> None:
        self._merge()
        self.checker.tracker.forget(key)
        self._by_resource = None

    def _rows(self) -> dict[str, Records]:
        # the tracker snapshots everything at once: group it once per batch, not once per key
        self._merge()
        if self._by_resource is None:
            grouped: dict[str, Records] = defaultdict(list)
            for row in self.checker.tracker.snapshot()["records"]:
                grouped[row[0]].append(row)
            self._by_resource = dict(grouped)
        return self._by_resource

    def _merge(self) -> None:
        if not self._restored:
            return
        rows = [r for r in self.checker.tracker.snapshot()["records"]
                if r[0] not in self._restored]
        rows += [r for restored in self._restored.values() for r in restored]
        self.checker.tracker.restore({"records": rows})
        self._restored = {}

    @classmethod
    def examples(cls) -> Examples:
        """A VM that opens violations, keeps them, fixes one; another that is deleted."""
        t0 = datetime(2025, 6, 2, tzinfo=UTC)
        ok = {"service": "checkout", "disk_encrypted": True, "public_ip": False,
              "monitoring": True, "tags": {"owner": "platform"}, "security_groups": []}
        bad = {**ok, "public_ip": True, "disk_encrypted": False, "monitoring": False}

        def change(rid: str, config: dict[str, Any], i: int, op: str = "update") -> ConfigChange:
            return ConfigChange(resource_id=rid, resource_type="novacron_vm", config=config,
                                op=op, event_id=f"{rid}-{i}",  # type: ignore[arg-type]
                                event_time=t0 + timedelta(minutes=i))

        return Examples(inputs=[
            change("vm-1", bad, 0), change("vm-2", bad, 1), change("vm-1", bad, 2),
            change("vm-2", {}, 3, "delete"), change("vm-1", {**bad, "public_ip": False}, 4),
            change("vm-1", ok, 5), change("vm-2", bad, 6), change("vm-1", ok, 7)])
