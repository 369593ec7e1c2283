"""The wire codec: JSON or Avro single-object encoding, detected per message, validated once."""

from __future__ import annotations

import reprlib
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, Literal, TypeVar

import orjson
from pydantic import TypeAdapter, ValidationError

from schemas import EVENT_TYPES
from schemas.avro import AVRO_DIR, MAGIC, AvroRegistry
from schemas.edge import (
    EDGE_CONTEXT,
    IDENTIFIER_PATTERN,
    EdgeContext,
    EdgeRules,
    edge_context,
    first_forbidden_char,
)
from schemas.envelope import Event
from schemas.errors import DeadLetterError, DecodeError, OversizedMessage, SchemaViolation

__all__ = ["DEFAULT_MAX_BYTES", "Codec", "WireFormat", "describe_validation_error"]

E = TypeVar("E", bound=Event)
WireFormat = Literal["json", "avro"]
DEFAULT_MAX_BYTES = 1_048_576
_ENVELOPE_ONLY = frozenset({"event_type"})
_PENDING: Any = DecodeError("not validated yet")  # a slot decode_batch fills after validation


_SHORT = reprlib.Repr()  # bounded repr: the input may be huge or deeply nested
_SHORT.maxlevel, _SHORT.maxdict, _SHORT.maxlist, _SHORT.maxstring = 2, 4, 4, 40


def describe_validation_error(exc: ValidationError, limit: int = 5) -> str:
    """One readable line per problem: `field: message (got value)`."""
    parts = []
    errors = exc.errors()
    for err in errors[:limit]:
        where = ".".join(str(p) for p in err["loc"]) or "(event)"
        got = _SHORT.repr(err.get("input"))
        got = got if len(got) <= 60 else got[:57] + "..."
        parts.append(f"{where}: {_message(err)} (got {got})")
    more = len(errors) - limit
    return "; ".join(parts) + (f"; and {more} more" if more > 0 else "")


def _message(err: Any) -> str:
    if err["type"] == "string_pattern_mismatch" and err["ctx"]["pattern"] == IDENTIFIER_PATTERN:
        found = first_forbidden_char(str(err["input"]))
        where = f"{found[1]} at position {found[0]}" if found else "one"
        return (f"contains a control, bidi, zero-width or line-break character ({where}); "
                "identifiers are single-line printable text")
    if err["type"] in ("float_type", "int_type") and isinstance(err["input"], bool):
        return "a boolean is not a number"
    return str(err["msg"])


class Codec:
    """Encodes events as JSON or Avro and decodes either, detecting the format per message."""

    def __init__(
        self,
        max_bytes: int = DEFAULT_MAX_BYTES,
        registry: AvroRegistry | None = None,
        rules: EdgeRules | None = None,
        clock: Callable[[], datetime] | None = None,
    ):
        self.max_bytes = max_bytes
        self.registry = registry or AvroRegistry(EVENT_TYPES.values(), AVRO_DIR / "history")
        self.rules = rules or EdgeRules()
        self._context = edge_context(self.rules, clock)  # the edge rules, for every decode
        self._adapters: dict[type[Event], TypeAdapter[Any]] = {}  # list[Model] validators

    def encode(self, event: Event, fmt: WireFormat = "json") -> bytes:
        """Serialise an event in the given wire format."""
        if fmt == "avro":
            writer = self.registry.current(event.event_type)
            record = event.model_dump(mode="python")
            for name in writer.json_fields:
                record[name] = orjson.dumps(record[name]).decode()
            return self.registry.encode(record, writer)
        data = event.model_dump(mode="json")
        data["event_type"] = event.event_type
        return orjson.dumps(data)

    def decode(
        self,
        raw: bytes | None,
        expected: type[E],
        defaults: Mapping[str, Any] | None = None,
        max_bytes: int | None = None,
        event_id: Callable[[], str] | None = None,
    ) -> E:
        """Decode and validate one message; raise a DeadLetterError with a readable reason.

        The edge rules (`rules`: JSON limits, the event-time window) apply here, so every worker
        that decodes with the same rules accepts and refuses the same records.

        `defaults` fill envelope fields a producer left out (the ingest edge derives a
        deterministic `event_id` from topic/partition/offset so a replay deduplicates).
        `max_bytes` overrides the size limit (internal topics carry dead letters with raw bytes).
        `event_id` makes the id of an event that has none (called only then: it is not free).
        """
        data = self._prepare(raw, expected, self.max_bytes if max_bytes is None else max_bytes)
        for name, value in (defaults or {}).items():
            data.setdefault(name, value)
        if event_id is not None and "event_id" not in data:
            data["event_id"] = event_id()
        return self._validate(data, expected, self._context)

    def decode_batch(
        self,
        raws: Sequence[bytes | None],
        expected: type[E],
        max_bytes: int | None = None,
        event_id: Callable[[int], str] | None = None,
        edge: EdgeContext | None = None,
    ) -> list[E | DeadLetterError]:
        """Decode many messages of one type: per message the event or the DeadLetterError that
        `decode` would raise for it (`event_id(i)` makes the id of message i when it has none).

        The messages are parsed one by one, then validated in one pydantic call; if any fails,
        the batch is validated again message by message, so each refusal keeps its own reason.
        The event-time window is judged against one clock reading for the whole batch: `edge`
        when given (from `pinned_edge`, shared with other decoders of the same batch), else one
        taken here.
        """
        limit = self.max_bytes if max_bytes is None else max_bytes
        out: list[E | DeadLetterError] = []
        parsed: list[tuple[int, dict[str, Any]]] = []
        for i, raw in enumerate(raws):
            try:
                data = self._prepare(raw, expected, limit)
            except DeadLetterError as exc:
                out.append(exc)
                continue
            if event_id is not None and "event_id" not in data:
                data["event_id"] = event_id(i)
            parsed.append((i, data))
            out.append(_PENDING)
        context = {EDGE_CONTEXT: edge or self.pinned_edge()}
        events: Sequence[E | DeadLetterError]
        try:
            events = self._list_adapter(expected).validate_python(
                [data for _, data in parsed], context=context
            )
        except Exception:  # at least one is refused: find which, each with its own reason
            events = [self._validate_or_error(data, expected, context) for _, data in parsed]
        for (i, _), event in zip(parsed, events, strict=True):
            out[i] = event
        return out

    def pinned_edge(self) -> EdgeContext:
        """The edge rules with the clock read once now: one reading judges a whole batch."""
        edge: EdgeContext = self._context[EDGE_CONTEXT]
        return edge.pinned()

    def _list_adapter(self, expected: type[E]) -> TypeAdapter[list[E]]:
        adapter = self._adapters.get(expected)
        if adapter is None:
            adapter = self._adapters[expected] = TypeAdapter(list[expected])  # type: ignore[valid-type]
        return adapter

    def _prepare(self, raw: bytes | None, expected: type[Event], limit: int) -> dict[str, Any]:
        """The message's fields as a dict (size, format and event type checked), not validated."""
        if raw is None or len(raw) == 0:
            raise DecodeError("empty message value (tombstone or null)")
        if len(raw) > limit:
            raise OversizedMessage(f"message is {len(raw)} bytes, above the {limit} limit")
        return self._avro(raw, expected) if raw[:2] == MAGIC else self._json(raw, expected)

    def _validate(self, data: dict[str, Any], expected: type[E], context: dict[str, Any]) -> E:
        try:
            return expected.model_validate(data, context=context)
        except ValidationError as exc:
            raise SchemaViolation(describe_validation_error(exc)) from exc
        except Exception as exc:  # a validator tripping over hostile input must not stop a worker
            raise SchemaViolation(f"rejected: {type(exc).__name__}: {exc}"[:2000]) from exc

    def _validate_or_error(
        self, data: dict[str, Any], expected: type[E], context: dict[str, Any]
    ) -> E | DeadLetterError:
        try:
            return self._validate(data, expected, context)
        except DeadLetterError as exc:
            return exc

    def _json(self, raw: bytes, expected: type[Event]) -> dict[str, Any]:
        try:
            data = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise DecodeError(f"not valid JSON (UTF-8): {exc}") from exc
        if not isinstance(data, dict):
            raise SchemaViolation(f"expected a JSON object, got {type(data).__name__}")
        declared = data.pop("event_type", expected.event_type)
        if declared != expected.event_type:
            raise SchemaViolation(
                f"event_type is {declared!r}, this topic carries {expected.event_type}"
            )
        return data

    def _avro(self, raw: bytes, expected: type[Event]) -> dict[str, Any]:
        reader = self.registry.current(expected.event_type)
        record = self.registry.decode(raw, reader)
        for name in reader.json_fields:
            value = record.get(name)
            if isinstance(value, str):
                try:
                    record[name] = orjson.loads(value)
                except orjson.JSONDecodeError as exc:
                    raise DecodeError(f"field {name} holds invalid JSON: {exc}") from exc
        return record
