"""Rows of one history table kept column-wise (no dict per record), and their Arrow encoding."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import orjson

from schemas.envelope import Event
from sinks.ddl import DATETIME, TABLES
from sinks.rows import format_datetime, payload_bytes

__all__ = ["ColumnBlock", "arrow_type", "event_columns", "merge_rows"]

_SORTED = orjson.OPT_SORT_KEYS

# Per event type: (plain, datetime, json) column names and every column in row order.
_PLANS: dict[str, tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]] = {
    etype: (spec.columns_of_kind("plain"), spec.columns_of_kind("datetime"),
            spec.columns_of_kind("json"))
    for etype, spec in TABLES.items()
}
_NAMES: dict[str, tuple[str, ...]] = {
    etype: (*plain, *dts, *jsons, "payload") for etype, (plain, dts, jsons) in _PLANS.items()
}


def event_columns(event_type: str, events: Sequence[Event]) -> dict[str, list[Any]]:
    """The columns of `events` (all of `event_type`): what `to_row` puts in each row, except
    that datetime columns keep datetime objects and the payload is UTF-8 bytes (both converted
    only when rows are needed)."""
    plain, datetimes, jsons = _PLANS[event_type]
    values = [e.__dict__ for e in events]  # pydantic keeps field values here
    columns = {name: [v[name] for v in values] for name in plain}
    for name in datetimes:
        columns[name] = [v[name] for v in values]
    for name in jsons:
        columns[name] = [orjson.dumps(v[name], option=_SORTED).decode() for v in values]
    columns["payload"] = [payload_bytes(e) for e in events]
    return columns


def merge_rows(first: dict[str, list[Any]], first_at: Sequence[int],
               second: dict[str, list[Any]], second_at: Sequence[int]) -> dict[str, list[Any]]:
    """Two column sets as one, rows in the order of their positions (`first_at[i]` is the
    position of row i of `first`); both have the same columns."""
    order = sorted([(p, 0, i) for i, p in enumerate(first_at)]
                   + [(p, 1, i) for i, p in enumerate(second_at)])
    sources = (first, second)
    return {name: [sources[s][name][i] for _, s, i in order] for name in first}


class ColumnBlock:
    """The buffered rows of one event table, one list per column."""

    def __init__(self, event_type: str) -> None:
        self.event_type = event_type
        self.names = _NAMES[event_type]
        self.columns: dict[str, list[Any]] = {name: [] for name in self.names}
        self.count = 0

    def __len__(self) -> int:
        return self.count

    def extend(self, columns: dict[str, list[Any]]) -> None:
        """Append converted columns (from `event_columns` of this block's event type)."""
        for name in self.names:
            self.columns[name].extend(columns[name])
        self.count += len(columns["payload"])

    def rows(self) -> list[dict[str, Any]]:
        """The rows as `to_row` builds them (for backends that take rows)."""
        datetimes = set(_PLANS[self.event_type][1])
        cols = [
            [None if v is None else format_datetime(v) for v in self.columns[name]]
            if name in datetimes else self.columns[name]
            for name in self.names[:-1]
        ]
        cols.append([payload.decode() for payload in self.columns["payload"]])
        return [dict(zip(self.names, values, strict=True)) for values in zip(*cols, strict=True)]

    def arrow_stream(self) -> bytes:
        """The block as an Arrow IPC stream (ClickHouse format `ArrowStream`), typed per column
        from the table's ClickHouse types."""
        import pyarrow as pa

        types = _arrow_types(self.event_type)
        table = pa.table(
            {name: pa.array(self.columns[name], type=types[name]) for name in self.names}
        )
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, table.schema) as writer:
            writer.write_table(table)
        return bytes(sink.getvalue().to_pybytes())


_WRAPPER = re.compile(r"^(?:Nullable|LowCardinality)\((.*)\)$")
_arrow_cache: dict[str, dict[str, Any]] = {}


def _arrow_types(event_type: str) -> dict[str, Any]:
    import pyarrow as pa

    types = _arrow_cache.get(event_type)
    if types is None:
        columns = {c.name: c.ch_type for c in TABLES[event_type].columns}
        types = {n: arrow_type(columns[n]) for n in _NAMES[event_type]}
        types["payload"] = pa.binary()  # UTF-8 JSON bytes: ClickHouse stores them as the String
        _arrow_cache[event_type] = types
    return types


def arrow_type(ch_type: str) -> Any:
    """The Arrow type a ClickHouse column type is filled from (nullability is per value)."""
    import pyarrow as pa

    ch_type = ch_type.split(" CODEC(")[0].strip()
    while (inner := _WRAPPER.match(ch_type)) is not None:
        ch_type = inner.group(1)
    scalars = {"String": pa.string(), "Int64": pa.int64(), "Float64": pa.float64(),
               "Bool": pa.bool_(), DATETIME: pa.timestamp("ms", tz="UTC")}
    if ch_type in scalars:
        return scalars[ch_type]
    if ch_type.startswith("Map(String, ") and ch_type.endswith(")"):
        return pa.map_(pa.string(), arrow_type(ch_type[len("Map(String, "):-1]))
    if ch_type.startswith("Array(") and ch_type.endswith(")"):
        return pa.list_(arrow_type(ch_type[len("Array("):-1]))
    raise ValueError(f"no Arrow type for the ClickHouse type {ch_type!r}")
