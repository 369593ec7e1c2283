"""A pre-filter of the history sink: MetricSample JSON straight to history columns, or defer.

`FastPath.decode` turns a poll batch of raw records into the columns `event_columns` makes of the
events pydantic decodes from them (payload bytes included), without building models. It takes
only a strict canonical subset it is certain about and defers every other record to the pydantic
path (`Codec.decode_batch`), the single authority for refusals, reasons and dead letters. The
plan (fields, bounds, lengths, defaults) is derived from the model and the edge rules; a field
or validator it does not know disables it for that type (`fast_path_for` returns None).
"""

from __future__ import annotations

import re
import types
import typing
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from math import isfinite
from typing import Any, Literal, get_args, get_origin

import orjson
from annotated_types import Ge, Le, MaxLen, MinLen
from pydantic import AfterValidator, Strict, StringConstraints
from pydantic.fields import FieldInfo

from schemas.avro import MAGIC
from schemas.edge import (
    FORBIDDEN_CHARS,
    IDENTIFIER_PATTERN,
    EdgeContext,
    Float,
    Identifier,
    Int,
    JsonBound,
)
from schemas.envelope import Event
from sinks.audit import AUDITED_TYPES
from sinks.ddl import TABLES

__all__ = ["FastBatch", "FastPath", "FieldPlan", "Unsupported", "fast_path_for", "plan_model"]

Kind = Literal["id", "float", "int", "time", "strmap", "floatmap"]
_MISSING: Any = object()  # absent, and no default the fast path may fill in: defer
_POSITION: Any = object()  # absent event_id: the record's position id (as the codec gives it)
_FRESH: Any = object()  # absent map: a new empty dict (the field's default_factory)
_EXACT = 2**53  # a JSON integer in a float field is taken only where float() is exact
_FORBIDDEN = re.compile(f"[{FORBIDDEN_CHARS}]")
_TIME = re.compile(  # the canonical UTC forms only; datetime.fromisoformat reads them exactly
    r"[1-9][0-9]{3}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{1,6})?(?:Z|\+00:00)")
_NONE = type(None)
_UTC_Z = orjson.OPT_UTC_Z


class Unsupported(TypeError):
    """The model has something the fast path does not reproduce exactly (it is then off)."""


@dataclass(frozen=True, slots=True)
class FieldPlan:
    """How one model field is read, checked and defaulted (derived from the model)."""

    name: str
    kind: Kind
    default: Any
    nullable: bool = False
    lo: Any = None
    hi: Any = None
    min_len: int = 0
    max_len: int | None = None


@dataclass(slots=True)
class FastBatch:
    """What the fast path made of a batch: rows for `taken`, the others `deferred`."""

    taken: list[int]
    """Indices of the records whose rows `columns` holds, ascending."""
    deferred: list[int]
    """Indices of the records left to the pydantic path, ascending."""
    columns: dict[str, list[Any]]
    """`event_columns` of the taken records' events, in the same order."""


def _clean(text: str) -> bool:
    """No character an Identifier refuses (for ASCII text: exactly the printable ones)."""
    return text.isprintable() if text.isascii() else _FORBIDDEN.search(text) is None


def _bounds(meta: list[Any], inner: Any) -> tuple[Any, Any]:
    lo: Any = None  # kept as the model has them: an int bound must not round through float
    hi: Any = None
    extra = [m for m in get_args(inner)[1:] if not isinstance(m, Strict)]
    for m in [*extra, *meta]:
        if isinstance(m, Ge):
            lo = m.ge if lo is None else max(lo, m.ge)
        elif isinstance(m, Le):
            hi = m.le if hi is None else min(hi, m.le)
        else:
            raise Unsupported(f"constraint {m!r}")
    return lo, hi


def _lengths(meta: list[Any]) -> tuple[int, int | None]:
    lo, hi, pattern = 0, None, False
    for m in meta:
        if isinstance(m, MinLen):
            lo = m.min_length
        elif isinstance(m, MaxLen):
            hi = m.max_length
        elif m == StringConstraints(pattern=IDENTIFIER_PATTERN):
            pattern = True
        else:
            raise Unsupported(f"constraint {m!r}")
    if not pattern:
        raise Unsupported("a string that is not an Identifier")
    return lo, hi


def _flat(meta: list[Any]) -> str | None:
    if len(meta) == 1 and isinstance(meta[0], AfterValidator):
        bound = meta[0].func
        if isinstance(bound, JsonBound) and bound.extra_depth == 0:
            return bound.flat
    return None


def _default(name: str, info: FieldInfo) -> Any:
    if info.is_required():
        return _MISSING
    if info.default_factory is None:
        return info.default
    if name == "event_id":
        return _POSITION
    return _FRESH if info.default_factory is dict else _MISSING  # e.g. event_time: now


def _plan_field(name: str, info: FieldInfo, timed: frozenset[str]) -> FieldPlan:
    ann, meta = info.annotation, list(info.metadata)
    default = _default(name, info)
    args = get_args(ann)
    nullable = get_origin(ann) in (typing.Union, types.UnionType) and _NONE in args
    inner = next(a for a in args if a is not _NONE) if nullable and len(args) == 2 else ann
    if ann is str:
        lo, hi = _lengths(meta)
        plan = FieldPlan(name, "id", default, min_len=lo, max_len=hi)
    elif inner == Float or inner == Int:
        kind: Kind = "float" if inner == Float else "int"
        plan = FieldPlan(name, kind, default, nullable, *_bounds(meta, inner))
    elif inner is datetime and name in timed and not meta:
        plan = FieldPlan(name, "time", default, nullable)
    elif inner == dict[Identifier, str] and _flat(meta) == "strings":
        plan = FieldPlan(name, "strmap", default)
    elif inner == dict[Identifier, Float] and _flat(meta) == "numbers":
        plan = FieldPlan(name, "floatmap", default)
    else:
        raise Unsupported(f"field {name}: {ann!r} with {meta!r}")
    if default not in (_MISSING, _POSITION, _FRESH) and not (default is None and nullable):
        if not (plan.kind == "id" and type(default) is str and _clean(default)
                and plan.min_len <= len(default) <= (plan.max_len or len(default))):
            raise Unsupported(f"field {name}: default {default!r}")
    return plan


def _func(decorator: Any) -> Any:
    return getattr(decorator.func, "__func__", decorator.func)  # a classmethod's function


def plan_model(model: type[Event]) -> tuple[FieldPlan, ...]:
    """The field plans of `model`, or Unsupported if it has anything the fast path cannot
    reproduce exactly (its own validators, serializers, other field kinds, audit entries)."""
    base = Event.__pydantic_decorators__
    deco = model.__pydantic_decorators__
    if model.model_config.get("extra") != "ignore" or model.latest_wins:
        raise Unsupported("extra fields are not ignored, or the type is latest-wins state")
    if model.event_type in AUDITED_TYPES:
        raise Unsupported("audited type: its audit entry needs the event")
    same_validators = (
        deco.field_validators.keys() == base.field_validators.keys() == {"_utc_millis"}
        and deco.model_validators.keys() == base.model_validators.keys() == {"_chain_starts_here"}
        and _func(deco.field_validators["_utc_millis"])
        == _func(base.field_validators["_utc_millis"])
        and _func(deco.model_validators["_chain_starts_here"])
        == _func(base.model_validators["_chain_starts_here"])
    )
    if not same_validators or deco.computed_fields or deco.field_serializers \
            or deco.model_serializers or model.__pydantic_post_init__:
        raise Unsupported("validators or serializers beyond the envelope's")
    if TABLES[model.event_type].columns_of_kind("json"):
        raise Unsupported("JSON columns")
    timed = frozenset(deco.field_validators["_utc_millis"].info.fields)
    return tuple(_plan_field(n, f, timed) for n, f in model.model_fields.items())


def fast_path_for(model: type[Event]) -> FastPath | None:
    """The fast path of `model`, or None where it does not apply (see `plan_model`)."""
    try:
        return FastPath(model)
    except Unsupported:
        return None


class FastPath:
    """Raw JSON records of one event type → history columns, or deferred to pydantic."""

    def __init__(self, model: type[Event]) -> None:
        self.model = model
        self.event_type = model.event_type
        self.plans = plan_model(model)
        spec = TABLES[model.event_type]
        self.plain = spec.columns_of_kind("plain")
        self.datetimes = spec.columns_of_kind("datetime")
        self.order = tuple(p.name for p in self.plans)  # the payload's key order
        self.prefix = b'{"event_type":' + orjson.dumps(self.event_type) + b","

    def decode(self, raws: Sequence[bytes | None], edge: EdgeContext, limit: int,
               position_id: Callable[[int], str]) -> FastBatch:
        """The rows of the records the fast path is certain about; `edge` must be pinned (its
        clock read once for the batch, as the pydantic path gets it), `limit` is the size limit
        and `position_id(i)` the event_id of record i when it carries none."""
        docs: list[dict[str, Any]] = []
        where: list[int] = []
        loads, etype = orjson.loads, self.event_type
        for i, raw in enumerate(raws):
            if not raw or len(raw) > limit or raw[:2] == MAGIC:
                continue
            try:
                doc = loads(raw)
            except orjson.JSONDecodeError:
                continue
            if type(doc) is dict and doc.pop("event_type", etype) == etype:
                docs.append(doc)
                where.append(i)
        now = edge.clock()
        scan = _Scan([True] * len(docs), [True] * len(docs), edge,
                     (now - edge.oldest, now + edge.ahead))
        values: dict[str, list[Any]] = {}
        for plan in self.plans:
            col = [d.get(plan.name, plan.default) for d in docs]
            if plan.default is _POSITION and _POSITION in col:
                col = [position_id(where[j]) if v is _POSITION else v for j, v in enumerate(col)]
            elif plan.default is _FRESH and _FRESH in col:
                col = [{} if v is _FRESH else v for v in col]
            values[plan.name] = _CHECKS[plan.kind](plan, col, scan)
        corr = values.get("correlation_id", ())
        if "" in corr:  # the chain starts here: it correlates with itself
            ids = values["event_id"]
            scan.same = [s and c != "" for s, c in zip(scan.same, corr, strict=True)]
            values["correlation_id"] = [e if c == "" else c for c, e in zip(corr, ids, strict=True)]
        ok, same = scan.ok, scan.same
        if not all(ok):
            values = {k: _kept(col, ok) for k, col in values.items()}
            docs, same = _kept(docs, ok), _kept(same, ok)
        taken = [i for i, good in zip(where, ok, strict=True) if good]
        columns = {name: values[name] for name in (*self.plain, *self.datetimes)}
        columns["payload"] = self._payloads(values, docs, same)
        picked = set(taken)
        return FastBatch(taken, [i for i in range(len(raws)) if i not in picked], columns)

    def _payloads(self, values: dict[str, list[Any]], docs: list[dict[str, Any]],
                  same: list[bool]) -> list[bytes]:
        """The wire JSON of each row, as `sinks.rows.payload_bytes` writes the event: the parsed
        record itself where it holds exactly the fields in the model's order, each value as the
        model keeps and writes it (`same`), else a dict of the row's values."""
        keys, order, dumps, prefix = self.order, list(self.order), orjson.dumps, self.prefix
        # prefix + body[1:] also copies the body out of orjson's oversized output buffer: kept
        # as they are, those buffers cost two page faults per record (measured: 3.5 µs vs 0.5)
        rows = zip(*(values[k] for k in keys), strict=True)
        return [prefix + dumps(doc)[1:] if verbatim and list(doc) == order
                else prefix + dumps(dict(zip(keys, row, strict=True)), option=_UTC_Z)[1:]
                for doc, verbatim, row in zip(docs, same, rows, strict=True)]


Window = tuple[datetime, datetime]


@dataclass(slots=True)
class _Scan:
    """What the column checks of one batch mark per record."""

    ok: list[bool]
    """False: defer the record to pydantic."""
    same: list[bool]
    """False: a value of the record is written differently than it was read (a JSON integer in
    a float field, a time not in the form the model writes), so its payload is rebuilt."""
    edge: EdgeContext
    window: Window


def _kept(items: list[Any], ok: list[bool]) -> list[Any]:
    return [v for v, good in zip(items, ok, strict=True) if good]


def _within(plan: FieldPlan, lo: Any, hi: Any) -> bool:
    return (plan.lo is None or lo >= plan.lo) and (plan.hi is None or hi <= plan.hi)


def _ids(plan: FieldPlan, col: list[Any], scan: _Scan) -> list[Any]:
    most = plan.max_len
    if col and set(map(type, col)) == {str} and min(map(len, col)) >= plan.min_len \
            and (most is None or max(map(len, col)) <= most) and _clean("".join(col)):
        return col
    ok = scan.ok
    for j, v in enumerate(col):  # find the ones to defer
        if not (type(v) is str and plan.min_len <= len(v) and (most is None or len(v) <= most)
                and _clean(v)):
            ok[j] = False
    return col


def _numbers(plan: FieldPlan, col: list[Any], scan: _Scan) -> list[Any]:
    kind = float if plan.kind == "float" else int
    allowed = {kind, _NONE} if plan.nullable else {kind}
    found = set(map(type, col))
    if found <= allowed:
        vals = [v for v in col if v is not None] if _NONE in found else col
        if not vals or (_within(plan, min(vals), max(vals))
                        and (kind is int or all(map(isfinite, vals)))):
            return col
    out, ok, same = [], scan.ok, scan.same
    for j, v in enumerate(col):  # find the ones to defer; exact JSON integers become floats
        if kind is float and type(v) is int and -_EXACT <= v <= _EXACT:
            v = float(v)
            same[j] = False
        if not ((v is None and plan.nullable) or (type(v) is kind and _within(plan, v, v)
                                                  and (kind is int or isfinite(v)))):
            ok[j] = False
        out.append(v)
    return out


def _times(plan: FieldPlan, col: list[Any], scan: _Scan) -> list[Any]:
    out: list[datetime | None] = []
    parse, match = datetime.fromisoformat, _TIME.fullmatch
    (lo, hi), ok, same = scan.window, scan.ok, scan.same
    for j, v in enumerate(col):
        if v is None and plan.nullable:
            out.append(None)
            continue
        if type(v) is str and match(v):
            try:
                t = parse(v)
            except ValueError:  # e.g. 25:00 or 30 February: pydantic says why
                t = None
            if t is not None:
                micro = t.microsecond % 1000  # millisecond precision, cut as the model cuts
                t = t.replace(microsecond=t.microsecond - micro) if micro else t
                if lo <= t <= hi:
                    out.append(t)
                    # written back as ...:SSZ, or ...:SS.mmm000Z when there are milliseconds
                    if not (len(v) == 20 and v[19] == "Z" or len(v) == 27 and v[23:] == "000Z"
                            and v[20:23] != "000"):
                        same[j] = False
                    continue
        ok[j] = False
        out.append(None)
    return out


def _maps(plan: FieldPlan, col: list[Any], scan: _Scan) -> list[Any]:
    numbers = plan.kind == "floatmap"
    out = col
    for j, v in enumerate(col):
        if type(v) is not dict:
            scan.ok[j] = False
        elif v:  # empty maps skip the edge's bound check in the model too
            good, fixed = _map_ok(v, numbers, scan.edge)
            if not good:
                scan.ok[j] = False
            elif fixed is not None:
                out = out if out is not col else list(col)
                out[j] = fixed
                scan.same[j] = False
    return out


def _map_ok(value: dict[str, Any], numbers: bool, edge: EdgeContext
            ) -> tuple[bool, dict[str, Any] | None]:
    """Whether a non-empty map passes (keys Identifier, the edge's flat bounds, values of the
    map's type), and a copy with exact JSON integers as floats where the model makes them so."""
    longest = edge.rules.max_string_chars
    if len(value) > edge.most_keys or max(map(len, value)) > longest \
            or not _clean("".join(value)):
        return False, None
    found = set(map(type, value.values()))
    if not numbers:
        return found == {str} and max(map(len, value.values())) <= longest, None
    if found == {float}:
        return all(map(isfinite, value.values())), None
    if not found <= {float, int}:
        return False, None
    fixed = {k: float(v) if type(v) is int else v for k, v in value.items()}
    exact = all(-_EXACT <= v <= _EXACT for v in value.values() if type(v) is int)
    return exact and all(map(isfinite, fixed.values())), fixed


_CHECKS: dict[str, Callable[[FieldPlan, list[Any], _Scan], list[Any]]]
_CHECKS = {"id": _ids, "float": _numbers, "int": _numbers, "time": _times, "strmap": _maps,
           "floatmap": _maps}
