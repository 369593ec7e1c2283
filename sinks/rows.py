"""Event → history row: typed columns from the table spec plus the whole event as JSON payload."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson

from schemas.envelope import Event
from sinks.ddl import TABLES, table_for

__all__ = ["format_datetime", "payload_bytes", "payload_json", "table_for", "to_row"]

# Per event type: (plain, datetime, json) column names, computed once; to_row is the hot path.
_PLANS: dict[str, tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]] = {
    etype: (spec.columns_of_kind("plain"), spec.columns_of_kind("datetime"),
            spec.columns_of_kind("json"))
    for etype, spec in TABLES.items()
}


def format_datetime(value: datetime) -> str:
    """`YYYY-MM-DD hh:mm:ss.fff` in UTC: ClickHouse reads JSON integers as seconds, not ms."""
    if value.tzinfo is not None and value.utcoffset():
        value = value.astimezone(UTC)
    return value.isoformat(sep=" ", timespec="milliseconds")[:23]


def payload_json(event: Event) -> str:
    """The event as its wire JSON (with `event_type`), as the codec encodes it."""
    return payload_bytes(event).decode()


def payload_bytes(event: Event) -> bytes:
    """`payload_json` as UTF-8 bytes (what the column-wise insert sends)."""
    # the serializer behind model_dump_json (the Rust path, without its Python wrapper);
    # event_type is spliced in rather than re-serialising
    body = event.__pydantic_serializer__.to_json(event)
    prefix = _PREFIXES.get(event.event_type)
    if prefix is None:
        prefix = b'{"event_type":' + orjson.dumps(event.event_type) + b","
        _PREFIXES[event.event_type] = prefix
    return prefix + body[1:]


_PREFIXES: dict[str, bytes] = {}


def to_row(event: Event) -> dict[str, Any]:
    """The row of `event` for its table (`table_for(event.event_type)`)."""
    plain, datetimes, jsons = _PLANS[event.event_type]
    values = event.__dict__  # pydantic keeps field values here; getattr per field is slower
    row = {name: values[name] for name in plain}
    for name in datetimes:
        value = values[name]
        row[name] = None if value is None else format_datetime(value)
    for name in jsons:
        row[name] = orjson.dumps(values[name], option=orjson.OPT_SORT_KEYS).decode()
    row["payload"] = payload_json(event)
    return row
