"""The envelope every event shares: ids, UTC millisecond time, source and the causal chain."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, ClassVar, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from schemas.edge import EDGE_CONTEXT, Identifier, JsonObject

__all__ = ["Event", "JsonObject", "utc_now"]


def utc_now() -> datetime:
    """Current UTC time truncated to the millisecond (the wire precision)."""
    return _to_ms(datetime.now(UTC))


def _to_ms(value: datetime) -> datetime:
    offset = value.utcoffset()
    if offset:  # a non-UTC zone: convert (the rare, costly case)
        value = value.astimezone(UTC)
    elif value.tzinfo is not UTC:  # naive (taken as UTC) or another zero-offset zone object
        value = value.replace(tzinfo=UTC)
    micro = value.microsecond % 1000
    return value.replace(microsecond=value.microsecond - micro) if micro else value


class Event(BaseModel):
    """Base of every event: the envelope fields plus helpers to continue a causal chain."""

    model_config = ConfigDict(
        extra="ignore",  # a newer writer's extra field must not break an older reader
        frozen=True,
        allow_inf_nan=False,
        ser_json_bytes="base64",
        val_json_bytes="base64",
    )

    event_type: ClassVar[str] = "Event"
    topic: ClassVar[str] = ""
    latest_wins: ClassVar[bool] = False
    """True for state kept on a compacted topic (the latest per key): its age is not judged."""

    event_id: Identifier = Field(
        default_factory=lambda: str(uuid.uuid4()), min_length=1, max_length=128
    )
    """Unique id of this event (a UUID string); the history deduplicates on it."""
    event_time: datetime = Field(default_factory=utc_now)
    """When the event happened, UTC, millisecond precision."""
    source: Identifier = Field(default="unknown", max_length=256)
    """Who emitted the event: a producer name or `novacron.<agent>`."""
    correlation_id: Identifier = Field(default="", max_length=128)
    """Id of the first event of the chain (the sample, change or request that started it)."""
    causation_id: Identifier = Field(default="", max_length=128)
    """Id of the event that directly caused this one (empty for the first event)."""
    produced_at: datetime | None = None
    """Processing time: when the process that wrote this record sent it, UTC, ms. NovaCron's
    senders always set their own (`stamped`), never copy it from input; with the cause's
    `produced_at` it gives each hop's latency. None in records of older writers."""

    @field_validator("event_time", "produced_at")
    @classmethod
    def _utc_millis(cls, value: datetime | None, info: ValidationInfo) -> datetime | None:
        if value is None:
            return None
        value = _to_ms(value)
        edge = info.context.get(EDGE_CONTEXT) if info.context else None
        if edge is not None:  # decoded at the edge: the time window applies
            edge.check_time(value, cls.latest_wins)
        return value

    @model_validator(mode="after")
    def _chain_starts_here(self) -> Self:
        # The first event of a chain correlates with itself, so one SQL query walks every chain.
        if not self.correlation_id:
            object.__setattr__(self, "correlation_id", self.event_id)
        return self

    @classmethod
    def caused_by(cls, parent: Event, **fields: Any) -> Self:
        """Build an event that continues `parent`'s chain (same correlation, parent as cause)."""
        fields.setdefault("correlation_id", parent.correlation_id)
        fields.setdefault("causation_id", parent.event_id)
        return cls(**fields)

    def stamped(self) -> Self:
        """A copy with `produced_at` set to now: called by every sender just before encoding."""
        return self.model_copy(update={"produced_at": utc_now()})

    @property
    def key(self) -> str:
        """The Kafka key: the resource id for most events (subclasses override)."""
        return str(getattr(self, "resource_id", "") or self.event_id)
