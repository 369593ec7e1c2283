"""Avro schemas derived from the pydantic models, and single-object encoding (C3 01 + fingerprint).

The schema of each event type is generated from its model, so the two cannot drift apart; the
generated schemas are also committed under `schemas/avro/` (a test keeps them equal) and older
versions under `schemas/avro/history/`, so a reader can resolve any writer schema it has shipped
with by its CRC-64-AVRO fingerprint, without a registry service.
"""

from __future__ import annotations

import io
import json
import types
import typing
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

import fastavro
import orjson
from fastavro.schema import fingerprint, parse_schema, to_parsing_canonical_form
from pydantic.fields import FieldInfo

from schemas.edge import strip_annotated
from schemas.envelope import Event
from schemas.errors import DecodeError

__all__ = [
    "AVRO_DIR",
    "MAGIC",
    "AvroRegistry",
    "WriterSchema",
    "avro_schema",
    "json_fields",
]

MAGIC = b"\xc3\x01"
"""Marker of the Avro single-object encoding."""
NAMESPACE = "novacron.events"
AVRO_DIR = Path(__file__).with_name("avro")
JSON_MARK = "novacron.json"  # custom attribute: the string holds JSON (dropped by canonical form)


def _is_json_type(annotation: Any) -> bool:
    origin = get_origin(annotation)
    if annotation is Any:
        return True
    if origin is dict:
        return get_args(annotation)[1] not in (str, float, int, bool)
    if origin is list:
        return get_args(annotation)[0] is not str
    return False


def _scalar(annotation: Any) -> Any:
    if annotation is bool:
        return "boolean"
    if annotation is int:
        return "long"
    if annotation is float:
        return "double"
    if annotation is str or get_origin(annotation) is Literal:
        return "string"
    if annotation is bytes:
        return "bytes"
    if annotation is datetime:
        return {"type": "long", "logicalType": "timestamp-millis"}
    origin = get_origin(annotation)
    if origin is dict:
        return {"type": "map", "values": _scalar(get_args(annotation)[1])}
    if origin is list:
        return {"type": "array", "items": _scalar(get_args(annotation)[0])}
    raise TypeError(f"no Avro mapping for {annotation!r}")


def _unwrap_optional(annotation: Any) -> tuple[Any, bool]:
    if get_origin(annotation) in (typing.Union, types.UnionType):
        args = [a for a in get_args(annotation) if a is not type(None)]
        if len(args) == 1 and len(get_args(annotation)) == 2:
            return args[0], True
    return annotation, False


def _default(info: FieldInfo, is_json: bool) -> tuple[bool, Any]:
    if info.default_factory is not None:
        value = info.default_factory()  # type: ignore[call-arg]
        if not isinstance(value, (dict, list)):
            return False, None  # dynamic defaults (ids, clocks) are required on the wire
    elif info.is_required():
        return False, None
    else:
        value = info.default
    if is_json:
        return True, orjson.dumps(value).decode()
    if isinstance(value, bytes):
        return True, value.decode("latin-1")  # Avro writes bytes defaults as ISO-8859-1 strings
    return True, value


def _field(name: str, info: FieldInfo) -> dict[str, Any]:
    annotation, optional = _unwrap_optional(strip_annotated(info.annotation))
    is_json = _is_json_type(annotation)
    avro_type: Any = "string" if is_json else _scalar(annotation)
    field: dict[str, Any] = {"name": name, "type": avro_type}
    if is_json:
        field[JSON_MARK] = True
    if info.description:
        field["doc"] = info.description
    has_default, default = _default(info, is_json)
    if optional:
        field["type"] = ["null", avro_type]
        field["default"] = None
    elif has_default:
        field["default"] = default
    return field


def avro_schema(model: type[Event]) -> dict[str, Any]:
    """The Avro record schema of an event model (generated, deterministic)."""
    return {
        "type": "record",
        "name": model.event_type,
        "namespace": NAMESPACE,
        "doc": (model.__doc__ or "").strip().splitlines()[0],
        "fields": [_field(name, info) for name, info in model.model_fields.items()],
    }


def json_fields(schema: dict[str, Any]) -> frozenset[str]:
    """Names of fields that travel as JSON strings (arbitrary JSON values)."""
    return frozenset(f["name"] for f in schema["fields"] if f.get(JSON_MARK))


@dataclass(frozen=True)
class WriterSchema:
    """A known writer schema: its event type, parsed form and fingerprint."""

    event_type: str
    parsed: Any
    fingerprint: bytes
    json_fields: frozenset[str]


def _fingerprint(parsed: Any) -> bytes:
    # fastavro returns the CRC-64-AVRO digest as hex in little-endian byte order, as the spec wants
    return bytes.fromhex(fingerprint(to_parsing_canonical_form(parsed), "CRC-64-AVRO"))


def _writer(schema: dict[str, Any]) -> WriterSchema:
    parsed = parse_schema(schema, _write_hint=False, _force=True)
    return WriterSchema(schema["name"], parsed, _fingerprint(parsed), json_fields(schema))


class AvroRegistry:
    """Writer schemas by fingerprint: every current schema plus the shipped history."""

    def __init__(self, models: typing.Iterable[type[Event]], history: Path | None = None) -> None:
        self._current: dict[str, WriterSchema] = {}
        self._by_fp: dict[bytes, WriterSchema] = {}
        for model in models:
            writer = _writer(avro_schema(model))
            self._current[model.event_type] = writer
            self._by_fp[writer.fingerprint] = writer
        for path in sorted(history.glob("*.avsc")) if history and history.is_dir() else []:
            self.register(json.loads(path.read_text()))

    def register(self, schema: dict[str, Any]) -> WriterSchema:
        """Make a writer schema (an older or newer version) resolvable by its fingerprint."""
        writer = _writer(schema)
        self._by_fp.setdefault(writer.fingerprint, writer)
        return writer

    def current(self, event_type: str) -> WriterSchema:
        """The schema this code writes for an event type."""
        return self._current[event_type]

    def encode(self, record: dict[str, Any], writer: WriterSchema) -> bytes:
        """Single-object encoding of an Avro-ready record dict."""
        out = io.BytesIO()
        out.write(MAGIC)
        out.write(writer.fingerprint)
        fastavro.schemaless_writer(out, writer.parsed, record)
        return out.getvalue()

    def decode(self, raw: bytes, reader: WriterSchema) -> dict[str, Any]:
        """Decode single-object bytes with the writer's schema resolved to `reader`."""
        if len(raw) < 10 or raw[:2] != MAGIC:
            raise DecodeError("not Avro single-object encoding (missing C3 01 marker)")
        writer = self._by_fp.get(raw[2:10])
        if writer is None:
            raise DecodeError(
                f"unknown Avro writer schema fingerprint {raw[2:10].hex()}: "
                "the producer uses a schema this reader does not ship"
            )
        if writer.event_type != reader.event_type:
            raise DecodeError(f"Avro record is a {writer.event_type}, expected {reader.event_type}")
        try:
            record = fastavro.schemaless_reader(io.BytesIO(raw[10:]), writer.parsed, reader.parsed)
        except Exception as exc:  # fastavro raises many types for truncated or garbled bytes
            raise DecodeError(f"corrupt Avro body: {type(exc).__name__}: {exc}") from exc
        assert isinstance(record, dict)
        return record
