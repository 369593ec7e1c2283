"""Hypothesis strategies that build any event type from its pydantic model's fields."""

from __future__ import annotations

import types
import typing
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal, get_args, get_origin

from annotated_types import Ge, Le, MaxLen, MinLen
from hypothesis import strategies as st
from pydantic import StringConstraints

from schemas import Event
from schemas.edge import IDENTIFIER_PATTERN

TEXT = st.characters(exclude_categories=("Cs",))
ID_TEXT = st.characters(exclude_categories=("Cs", "Cc", "Cf", "Zl", "Zp"))
"""Identifier characters: no controls, format (bidi, zero-width) or line separators."""
JSON_LEAF = (
    st.none()
    | st.booleans()
    | st.integers(-(2**53), 2**53)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(TEXT, max_size=12)
)
JSON = st.recursive(
    JSON_LEAF,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(TEXT, max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)
_NOW = datetime.now(UTC).replace(tzinfo=None)
TIMES = st.datetimes(  # inside the edge's event-time window (default: 365 days back, 1 h ahead)
    min_value=_NOW - timedelta(days=300), max_value=_NOW, timezones=st.just(UTC)
).map(lambda t: t.replace(microsecond=t.microsecond // 1000 * 1000))


def _bounds(metadata: list[Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for m in metadata:
        if isinstance(m, Ge):
            out["min_value"] = m.ge
        elif isinstance(m, Le):
            out["max_value"] = m.le
        elif isinstance(m, MinLen):
            out["min_size"] = m.min_length
        elif isinstance(m, MaxLen):
            out["max_size"] = min(m.max_length, 40)
        elif isinstance(m, StringConstraints) and m.pattern == IDENTIFIER_PATTERN:
            out["identifier"] = True
    return out


def _for(annotation: Any, metadata: list[Any]) -> st.SearchStrategy[Any]:
    origin, args = get_origin(annotation), get_args(annotation)
    if origin is Annotated:
        return _for(args[0], [*metadata, *annotation.__metadata__])
    if origin in (typing.Union, types.UnionType):
        inner = [a for a in args if a is not type(None)][0]
        return st.none() | _for(inner, metadata)
    b = _bounds(metadata)
    if annotation is str:
        chars = ID_TEXT if b.get("identifier") else TEXT
        return st.text(chars, min_size=b.get("min_size", 0), max_size=b.get("max_size", 20))
    if annotation is float:
        return st.floats(
            b.get("min_value"), b.get("max_value"), allow_nan=False, allow_infinity=False
        )
    if annotation is int:
        return st.integers(b.get("min_value", -(2**40)), b.get("max_value", 2**40))
    if annotation is bool:
        return st.booleans()
    if annotation is bytes:
        return st.binary(max_size=64)
    if annotation is datetime:
        return TIMES
    if origin is Literal:
        return st.sampled_from(args)
    if origin is dict:
        value = JSON if args[1] is Any else _for(args[1], [])
        return st.dictionaries(_for(args[0], []), value, max_size=3)
    if origin is list:
        if get_origin(args[0]) is dict:
            item = st.dictionaries(st.text(TEXT, max_size=8), JSON, max_size=3)
        else:
            item = _for(args[0], [])
        return st.lists(item, max_size=3)
    raise TypeError(f"no strategy for {annotation!r}")


def events(model: type[Event]) -> st.SearchStrategy[Event]:
    """Valid instances of `model` with every field drawn."""
    fields = {
        name: _for(info.annotation, list(info.metadata))
        for name, info in model.model_fields.items()
        if name not in ("event_id", "correlation_id", "causation_id")
    }
    fields["event_id"] = st.uuids().map(str)
    return st.builds(model, **fields)


def around(*edges: float, lo: float, hi: float, step: float) -> st.SearchStrategy[float]:
    """Floats in [lo, hi]: about half are an edge or one `step` either side of it (where a
    `>` written as `>=` shows), the rest anywhere in the range."""
    points = sorted({min(hi, max(lo, e + d)) for e in edges for d in (-step, 0.0, step)})
    return st.sampled_from(points) | st.floats(lo, hi, allow_nan=False, allow_infinity=False)


def ints_around(*edges: int, lo: int, hi: int) -> st.SearchStrategy[int]:
    """Integers in [lo, hi]: about half are an edge or its neighbour, the rest anywhere."""
    points = sorted({min(hi, max(lo, e + d)) for e in edges for d in (-1, 0, 1)})
    return st.sampled_from(points) | st.integers(lo, hi)
