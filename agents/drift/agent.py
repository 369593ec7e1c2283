"""The drift detector: each config change is diffed against its baseline at once (pure, no I/O)."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from agents.contract import Examples, refuse
from agents.drift.baseline import BaselineStore
from agents.drift.config import DriftConfig
from agents.drift.engine import DriftEngine, DriftReport, Snapshot
from agents.drift.remediation import proposal
from agents.drift.rules import IgnoreSet
from schemas import ConfigChange, DesiredState, DriftFinding, Event
from schemas.envelope import utc_now
from schemas.errors import DecodeError

__all__ = ["DriftConfig", "DriftDetector"]

SOURCE = "novacron.drift"
_INDEX = re.compile(r"/\d+(?=/|$)")


@dataclass
class _Open:
    """The open finding of a resource, to suppress repeats and to close it when clean."""

    fingerprint: str
    severity: str


class DriftDetector:
    """`on_baseline` feeds baselines; `on_config` returns [DriftFinding, Decision] or [].

    A resource that returns to its baseline after a finding gets a closing DriftFinding
    (status remediated, or accepted when the baseline was an accepted drift). As a host agent
    (agents/contract.py) a resource's open finding is its key: dedupe survives a restart.
    """

    name = "drift"
    inputs: tuple[type[Event], ...] = (ConfigChange,)

    def __init__(
        self,
        config: DriftConfig | None = None,
        ignores: IgnoreSet | None = None,
        clock: Callable[[], datetime] = utc_now,
        *,
        store: BaselineStore | None = None,
    ) -> None:
        self.config = config or DriftConfig()
        self.engine = DriftEngine(self.config, ignores, clock)
        self.store = store if store is not None else BaselineStore()
        """Baselines: the process's shared copy when the host gives one (agents/shared.py)."""
        self._snapshots: dict[str, tuple[str, Snapshot]] = {}
        self._open: dict[str, _Open] = {}

    @property
    def ignores(self) -> IgnoreSet:
        """The mutable ignore set the API / CLI adds rules to."""
        return self.engine.ignores

    def open_findings(self) -> dict[str, str]:
        """Resource id → severity of every open finding this instance holds."""
        return {rid: o.severity for rid, o in self._open.items()}

    def on_baseline(self, state: DesiredState) -> None:
        """Record the latest baseline of a resource (a deleted one withdraws it)."""
        self.store.apply(state)
        self._snapshots.pop(state.resource_id, None)

    def on_config(self, change: ConfigChange) -> list[Event]:
        """Compare a config change with the baseline; emit a finding and its remediation."""
        baseline = self.store.get(change.resource_id)
        if baseline is None:
            return []
        report = self.evaluate(change, baseline)
        if not report.drifted:
            return self._closed(change, baseline, report)
        fingerprint = _fingerprint(report)
        previous = self._open.get(change.resource_id)
        if self.config.dedupe and previous is not None and previous.fingerprint == fingerprint:
            return []
        finding = self._finding(change, baseline, report)
        self._open[change.resource_id] = _Open(fingerprint, finding.severity)
        return [finding, proposal(finding, report, baseline, change, self.config)]

    def evaluate(self, change: ConfigChange, baseline: DesiredState) -> DriftReport:
        """The comparison alone (no state change besides the baseline cache)."""
        snap = self._snapshot(baseline)
        rtype = baseline.resource_type or change.resource_type
        if change.op == "delete":
            return self.engine.deleted(rtype, snap)
        return self.engine.compare(rtype, snap, change.config)

    def _snapshot(self, baseline: DesiredState) -> Snapshot:
        # The baseline's canonical form and hash are computed once per baseline event.
        cached = self._snapshots.get(baseline.resource_id)
        if cached is None or cached[0] != baseline.event_id:
            cached = (baseline.event_id, self.engine.snapshot(baseline.config))
            self._snapshots[baseline.resource_id] = cached
        return cached[1]

    def _finding(
        self, change: ConfigChange, baseline: DesiredState, report: DriftReport
    ) -> DriftFinding:
        return DriftFinding.caused_by(
            change,
            source=SOURCE,
            resource_id=change.resource_id,
            resource_type=baseline.resource_type,
            severity=report.severity,
            drift_ratio=report.ratio,
            changed_fields=report.changed_fields,
            changes=[c.as_dict() for c in report.changes[: self.config.max_changes]],
            baseline_hash=report.baseline_hash,
            current_hash=report.current_hash,
            baseline_revision=(baseline.revision or baseline.origin)[:128],
        )

    def _closed(
        self, change: ConfigChange, baseline: DesiredState, report: DriftReport
    ) -> list[Event]:
        previous = self._open.pop(change.resource_id, None)
        if previous is None:
            return []
        status = "accepted" if baseline.origin == "accepted-drift" else "remediated"
        return [
            DriftFinding.caused_by(
                change,
                source=SOURCE,
                resource_id=change.resource_id,
                resource_type=baseline.resource_type,
                severity=previous.severity,
                drift_ratio=0.0,
                baseline_hash=report.baseline_hash,
                current_hash=report.current_hash,
                baseline_revision=(baseline.revision or baseline.origin)[:128],
                status=status,
            )
        ]


    # --- the agent contract -------------------------------------------------------------------
    def handle(self, event: Event) -> list[Event]:
        if isinstance(event, ConfigChange):
            return self.on_config(event)
        refuse(self, event)

    def tick(self, now: datetime) -> list[Event]:
        return []

    def state_key(self, event: Event) -> str | None:
        return event.resource_id if isinstance(event, ConfigChange) else None

    def snapshot(self, key: str) -> bytes | None:
        """The resource's open finding (what dedupes and later closes it), None when clean."""
        found = self._open.get(key)
        return None if found is None else orjson.dumps(asdict(found))

    def restore(self, key: str, blob: bytes) -> None:
        try:
            self._open[key] = _Open(**orjson.loads(blob))
        except (orjson.JSONDecodeError, TypeError) as exc:
            raise DecodeError(f"drift state of {key} is not an open finding: {exc}") from exc

    def forget(self, key: str) -> None:
        self._open.pop(key, None)
        self._snapshots.pop(key, None)

    @classmethod
    def examples(cls) -> Examples:
        """Two security groups: drift, a repeat (deduped), a fix (closing finding), a delete."""
        t0 = datetime(2025, 6, 2, tzinfo=UTC)
        base: dict[str, Any] = {"name": "web", "ingress": [{"port": 443, "cidr": "10.0.0.0/8"}],
                "tags": {"environment": "production"}}
        open_22 = {**base, "ingress": [*base["ingress"], {"port": 22, "cidr": "0.0.0.0/0"}]}
        shared = [DesiredState(resource_id=r, resource_type="aws_security_group", config=base,
                               revision="c0ffee", event_time=t0) for r in ("sg-a", "sg-b")]

        def change(rid: str, config: dict[str, Any], i: int, op: str = "update"
                   ) -> ConfigChange:
            return ConfigChange(resource_id=rid, resource_type="aws_security_group",
                                provider="aws", op=op, change_source="console", config=config,
                                event_id=f"{rid}-{i}", event_time=t0)  # type: ignore[arg-type]

        inputs = [change("sg-a", open_22, 0), change("sg-b", base, 1), change("sg-a", open_22, 2),
                  change("sg-b", {**base, "name": "api"}, 3), change("sg-a", base, 4),
                  change("sg-b", {**base, "name": "api"}, 5), change("sg-a", open_22, 6),
                  change("sg-b", base, 7), change("sg-a", {}, 8, "delete"), change("sg-c", base, 9)]
        return Examples(inputs=inputs, shared=shared)


def _fingerprint(report: DriftReport) -> str:
    """Identity of a drift: the baseline plus what differs (ignored noise excluded).

    Array indices are blanked and the changes sorted, because a re-ordered set- or key-mode
    list moves its changed elements to other positions without a new drift.
    """
    opts = orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS
    parts = sorted(
        orjson.dumps([_INDEX.sub("/*", c.path), c.op, c.old, c.new], option=opts)
        for c in report.changes
    )
    body = orjson.dumps([report.baseline_hash, [p.decode() for p in parts]])
    return hashlib.sha256(body).hexdigest()
