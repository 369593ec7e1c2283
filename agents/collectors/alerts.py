"""Alertmanager webhook → runbook decisions for the policy gate, and resolutions on the chain.

A firing alert that a configured route takes becomes `Decision(decision_type="run_runbook",
origin="alert")` with the route's runbook and variables from labels; its id derives from the
alert's fingerprint and start, so a repeated notification maps to the same decision, hence the
same action id, which the executor runs at most once. While the alert is open, repeats are not
re-published at all. A resolved alert becomes an `Outcome(scope="alert", status="resolved")` on
the decision's chain: an observation about the alert, not an action outcome (those come from the
executor only), kept beside the action's outcomes so one query shows whether the runbook helped.
"""

from __future__ import annotations

import re
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from agents.collectors.config import AlertRoute, AlertsConfig, LabelVariable
from agents.collectors.rejections import request_dead_letter
from schemas import DeadLetter, Decision, Event, Outcome, action_id_for
from schemas.codec import describe_validation_error
from schemas.errors import DecodeError, SchemaViolation

__all__ = ["ALERT_EDGE", "AlertReceiver", "AlertResult", "OpenAlert", "decision_id_for"]

ALERT_EDGE = "alertmanager-webhook"
"""`source_topic` of dead letters from the webhook."""

_ALERT_NS = uuid.UUID("c0a4e7a2-91d3-4c5e-b8f4-3a7d2e6b1f90")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_INTEGER = re.compile(r"[+-]?[0-9]{1,18}")


class WebhookAlert(BaseModel):
    """One alert of an Alertmanager webhook notification (version 4)."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    status: Literal["firing", "resolved"]
    """Whether the alert fires or has resolved."""
    labels: dict[str, str]
    """Identifying labels (`alertname` and the rule's labels)."""
    annotations: dict[str, str] = Field(default_factory=dict)
    """Informational text (`summary`, `description`); only used in the decision's reasoning."""
    starts_at: datetime = Field(alias="startsAt")
    """When this firing began: with the fingerprint, it identifies the firing."""
    ends_at: datetime | None = Field(default=None, alias="endsAt")
    """When it resolved (a zero time while firing)."""
    fingerprint: str = Field(min_length=1, max_length=64, pattern=r"^[0-9A-Za-z]+$")
    """Alertmanager's hash of the labels."""


class _Payload(BaseModel):
    model_config = ConfigDict(extra="ignore")

    version: str = "4"
    alerts: list[dict[str, Any]] = Field(max_length=10_000)


@dataclass(frozen=True, slots=True)
class OpenAlert:
    """A firing alert that already produced its decision."""

    starts_at_ms: int
    decision_id: str


@dataclass
class AlertResult:
    """What one notification produced, and the open-alert state to commit after Kafka's ack."""

    events: list[Event] = field(default_factory=list)
    """Decisions, resolution outcomes and dead letters, in order."""
    counts: Counter[str] = field(default_factory=Counter)
    """Alerts by result: decided, repeat, resolved, unmapped, rejected."""
    staged: dict[str, OpenAlert | None] = field(default_factory=dict)
    """fingerprint → new open state (None: closed)."""


def decision_id_for(fingerprint: str, starts_at: datetime) -> str:
    """The decision id of one firing of one alert (fingerprint + start, millisecond precision)."""
    return str(uuid.uuid5(_ALERT_NS, f"{fingerprint}|{_ms(starts_at)}"))


def _ms(value: datetime) -> int:
    return int(value.astimezone(UTC).timestamp() * 1000)


class AlertRoutingError(SchemaViolation):
    """A mapped alert lacks what its route needs (resource label, a variable's label)."""


class AlertReceiver:
    """Pure webhook logic: parse, route, decide or suppress, record resolutions."""

    def __init__(self, config: AlertsConfig | None = None) -> None:
        self.config = config or AlertsConfig()
        self._open: dict[str, OpenAlert] = {}

    def handle(self, body: bytes, now: datetime) -> AlertResult:
        """Map one notification; a body that is not a webhook payload raises (400)."""
        try:
            payload = _Payload.model_validate(orjson.loads(body))
        except orjson.JSONDecodeError as exc:
            raise DecodeError(f"not JSON: {exc}") from None
        except ValidationError as exc:
            reason = describe_validation_error(exc)
            raise SchemaViolation(f"not an Alertmanager webhook: {reason}") from None
        result = AlertResult()
        for raw in payload.alerts:
            self._one(raw, now, result)
        return result

    def _one(self, raw: dict[str, Any], now: datetime, result: AlertResult) -> None:
        try:
            alert = WebhookAlert.model_validate(raw)
            route = next((r for r in self.config.routes if r.matches(alert.labels)), None)
            if route is None:
                result.counts["unmapped"] += 1
            elif alert.status == "firing":
                self._firing(alert, route, result)
            else:
                self._resolved(alert, route, result)
        except (ValidationError, AlertRoutingError) as exc:
            reason = describe_validation_error(exc) if isinstance(exc, ValidationError) else exc
            result.counts["rejected"] += 1
            result.events.append(self._dead_letter(raw, f"alert rejected: {reason}", now))

    def _firing(self, alert: WebhookAlert, route: AlertRoute, result: AlertResult) -> None:
        starts = _ms(alert.starts_at)
        current = self._state(alert.fingerprint, result)
        if current is not None and current.starts_at_ms == starts:
            result.counts["repeat"] += 1  # the same firing again: its decision is out already
            return
        decision = self._decision(alert, route)
        result.events.append(decision)
        result.staged[alert.fingerprint] = OpenAlert(starts, decision.event_id)
        result.counts["decided"] += 1

    def _decision(self, alert: WebhookAlert, route: AlertRoute) -> Decision:
        name = alert.labels.get("alertname", "")
        summary = alert.annotations.get("summary") or alert.annotations.get("description", "")
        variables = {k: _variable(k, spec, alert.labels) for k, spec in route.variables.items()}
        return Decision(
            event_id=decision_id_for(alert.fingerprint, alert.starts_at),
            event_time=alert.starts_at,
            source=self.config.source,
            resource_id=_resource(alert, route),
            decision_type="run_runbook",
            origin="alert",
            confidence=1.0,
            reasoning=_clean(
                f"alert {name} (fingerprint {alert.fingerprint}) firing since "
                f"{alert.starts_at.isoformat()}: {summary}"
            )[:4096],
            params={"runbook": route.runbook, **route.constants, **variables},
            requires_approval=route.requires_approval,
        )

    def _resolved(self, alert: WebhookAlert, route: AlertRoute, result: AlertResult) -> None:
        decision_id = decision_id_for(alert.fingerprint, alert.starts_at)
        ends = alert.ends_at or alert.starts_at
        result.events.append(
            Outcome(
                event_id=str(uuid.uuid5(_ALERT_NS, f"{decision_id}|resolved")),
                event_time=ends,
                source=self.config.source,
                correlation_id=decision_id,
                causation_id=decision_id,
                action_id=action_id_for(decision_id),
                scope="alert",
                status="resolved",
                duration_ms=max(0.0, (ends - alert.starts_at).total_seconds() * 1000),
                resource_id=_resource(alert, route, required=False),
                action_type="run_runbook",
                output={
                    "alertname": alert.labels.get("alertname", ""),
                    "fingerprint": alert.fingerprint,
                    "runbook": route.runbook,
                    "starts_at": alert.starts_at.isoformat(),
                    "ends_at": ends.isoformat(),
                },
            )
        )
        result.staged[alert.fingerprint] = None
        result.counts["resolved"] += 1

    def _state(self, fingerprint: str, result: AlertResult) -> OpenAlert | None:
        if fingerprint in result.staged:
            return result.staged[fingerprint]
        return self._open.get(fingerprint)

    def _dead_letter(self, raw: dict[str, Any], reason: str, now: datetime) -> DeadLetter:
        body = orjson.dumps(raw, option=orjson.OPT_SORT_KEYS, default=str)
        return request_dead_letter(body, reason, "alert", now, edge=ALERT_EDGE)

    # --- state -----------------------------------------------------------------------------------
    def commit(self, result: AlertResult) -> None:
        """Apply a notification's open/closed changes (after Kafka acknowledged its events)."""
        for fingerprint, state in result.staged.items():
            if state is None:
                self._open.pop(fingerprint, None)
            else:
                self._open[fingerprint] = state
        overflow = len(self._open) - self.config.max_open
        if overflow > 0:
            oldest = sorted(self._open, key=lambda f: self._open[f].starts_at_ms)[:overflow]
            for fingerprint in oldest:
                del self._open[fingerprint]

    def open_alerts(self) -> dict[str, OpenAlert]:
        """Open alerts by fingerprint (a copy)."""
        return dict(self._open)

    def snapshot(self, key: str) -> bytes | None:
        """The state of one fingerprint as bytes, or None when it is not open."""
        state = self._open.get(key)
        return None if state is None else _encode(state)

    def state_records(self, result: AlertResult) -> list[tuple[str, bytes | None]]:
        """What `commit(result)` will change, as (fingerprint, snapshot or None) records for a
        compacted state topic, so they can be made durable together with the events."""
        return [(fp, None if s is None else _encode(s)) for fp, s in result.staged.items()]

    def restore(self, key: str, blob: bytes) -> None:
        """Load one fingerprint's state from `snapshot` bytes."""
        data = orjson.loads(blob)
        self._open[key] = OpenAlert(int(data["starts_at_ms"]), str(data["decision_id"]))

    def forget(self, key: str) -> None:
        """Drop one fingerprint's state."""
        self._open.pop(key, None)


def _encode(state: OpenAlert) -> bytes:
    return orjson.dumps({"starts_at_ms": state.starts_at_ms, "decision_id": state.decision_id})


def _resource(alert: WebhookAlert, route: AlertRoute, *, required: bool = True) -> str:
    for label in route.resource_labels:
        value = alert.labels.get(label)
        if value:
            if _CONTROL.search(value) or len(value) > 512:
                raise AlertRoutingError(f"label {label!r} is not a usable resource id")
            return value
    if required:
        raise AlertRoutingError(f"none of the resource labels {route.resource_labels} is present")
    return ""


def _variable(name: str, spec: LabelVariable, labels: dict[str, str]) -> str | int | float:
    raw = labels.get(spec.label)
    if raw is None or raw == "":
        if spec.default is None:
            raise AlertRoutingError(f"variable {name!r}: label {spec.label!r} is missing")
        return spec.default
    try:
        if spec.type == "integer":
            if not _INTEGER.fullmatch(raw):
                raise ValueError("not an integer")
            return int(raw)
        if spec.type == "number":
            value = float(raw)
            if value != value or value in (float("inf"), float("-inf")):
                raise ValueError("not finite")
            return value
    except ValueError:
        raise AlertRoutingError(f"variable {name!r}: {raw!r} is not an {spec.type}") from None
    if _CONTROL.search(raw) or len(raw) > spec.max_length:
        raise AlertRoutingError(f"variable {name!r}: control characters or longer than allowed")
    return raw


def _clean(text: str) -> str:
    return _CONTROL.sub(" ", text)
