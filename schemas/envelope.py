"""The envelope every event shares: ids, UTC millisecond time, source and the causal chain."""

from __future__ import annotations

import copy
import os
from datetime import UTC, datetime
from typing import Any, ClassVar, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from schemas.edge import EDGE_CONTEXT, Identifier, JsonObject

__all__ = ["Event", "JsonObject", "utc_now"]


def utc_now() -> datetime:
    """Current UTC time truncated to the millisecond (the wire precision)."""
    return _to_ms(datetime.now(UTC))


def new_event_id() -> str:
    """A random (version 4) UUID string, as `str(uuid.uuid4())` makes it (16 bytes from
    os.urandom, the same version and variant bits) without building a UUID object; the bytes are
    read 64 ids at a time (a forked child drops what its parent had read)."""
    try:
        raw = bytearray(_RANDOM_IDS.pop())
    except IndexError:
        block = os.urandom(16 * 64)
        _RANDOM_IDS.extend([block[i:i + 16] for i in range(16, len(block), 16)])
        raw = bytearray(block[:16])
    raw[6] = (raw[6] & 0x0F) | 0x40  # version 4
    raw[8] = (raw[8] & 0x3F) | 0x80  # RFC 4122 variant
    h = raw.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


_RANDOM_IDS: list[bytes] = []
os.register_at_fork(after_in_child=_RANDOM_IDS.clear)


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
        # looked up per call (a lambda, not the function): agents.checks pins ids by patching it
        default_factory=lambda: new_event_id(), min_length=1, max_length=128
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

    @classmethod
    def built(cls, parent: Event, **fields: Any) -> Self:
        """`caused_by` without validation, for hot paths: ONLY for an event the code itself built
        from values it produced and typed (each field of its declared type, within its bounds;
        identifiers taken from validated events or config), never for decoded input. Defaults,
        the millisecond event time and the chain (correlation and cause) are set as validation
        sets them; the result equals what `caused_by` returns for the same fields."""
        template, factories, required = _templates.get(cls) or _template(cls)
        values = dict(template)
        for name, factory in factories:
            if name not in fields:
                values[name] = factory()
        fields.setdefault("correlation_id", parent.correlation_id)
        fields.setdefault("causation_id", parent.event_id)
        values.update(fields)
        if len(values) != len(template) or not required <= fields.keys():  # a name too many
            raise TypeError(f"{cls.__name__}: fields {sorted(fields)} are not its fields or "
                            f"leave out a required one ({sorted(required)})")
        values["event_time"] = _to_ms(values["event_time"])
        if not values["correlation_id"]:
            values["correlation_id"] = values["event_id"]
        event = cls.__new__(cls)
        object.__setattr__(event, "__dict__", values)
        object.__setattr__(event, "__pydantic_fields_set__", set(fields))
        object.__setattr__(event, "__pydantic_extra__", None)
        object.__setattr__(event, "__pydantic_private__", None)
        return event

    def stamped(self) -> Self:
        """A copy with `produced_at` set to now: called by every sender just before encoding."""
        return self.model_copy(update={"produced_at": utc_now()})

    @property
    def key(self) -> str:
        """The Kafka key: the resource id for most events (subclasses override)."""
        return str(getattr(self, "resource_id", "") or self.event_id)


_Template = tuple[dict[str, Any], list[tuple[str, Any]], frozenset[str]]
_templates: dict[type[Event], _Template] = {}
"""Per event class (for `Event.built`): every field with its immutable default (None where a
factory makes it or it is required), in declaration order; the fields a factory makes; the
required fields."""
_IMMUTABLE = (str, int, float, bool, type(None), tuple, frozenset)


def _template(cls: type[Event]) -> _Template:
    if cls.__pydantic_post_init__ or cls.model_config.get("extra") == "allow":
        raise TypeError(f"{cls.__name__} cannot be built without validation")
    template: dict[str, Any] = {}
    factories: list[tuple[str, Any]] = []
    for name, info in cls.model_fields.items():
        default = None if info.is_required() else info.get_default()
        template[name] = default if isinstance(default, _IMMUTABLE) else None
        if info.default_factory is not None:
            factories.append((name, info.default_factory))
        elif not isinstance(default, _IMMUTABLE):  # a mutable default: a copy per event
            factories.append((name, lambda d=default: copy.deepcopy(d)))
    required = frozenset(n for n, info in cls.model_fields.items() if info.is_required())
    _templates[cls] = (template, factories, required)
    return _templates[cls]
