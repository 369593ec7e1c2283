"""Edge rules: what a record must respect beyond its types before any worker acts on it.

One rule set (`EdgeRules`, the `edge` section of the settings) judges every record where it
crosses the edge: `Codec.decode` passes it to pydantic as validation context, so JSON and Avro
input, the history sink and every agent host accept and refuse exactly the same records. A
refusal is a `SchemaViolation` with a readable reason, i.e. a dead letter.

- Free-form JSON fields (`config`, `params`, `details`, `output`, `changes`, and the typed maps and
  lists such as `labels`, `extra`, `state`, `reasons`) are bounded in nesting depth, keys per
  object, items per list, items in total, and key and string length.
- `event_time` must lie in a window around now: not older than the history keeps rows (ClickHouse
  drops older rows on insert), not further ahead than clock skew explains. Compacted state topics
  (a baseline, a policy) keep the latest record per key however old it is: only the future bound
  applies to them.

Type-level rules hold everywhere, also for events built in code: identifiers are single-line
printable text (`Identifier`), numbers are never booleans or strings (`Float`, `Int`), booleans
are only `true`/`false` (`Bool`), integers fit ClickHouse's Int64.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal, get_args, get_origin

import orjson
from annotated_types import Ge, Le
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    Strict,
    StringConstraints,
    ValidationInfo,
)
from pydantic_core import PydanticCustomError

__all__ = [
    "EDGE_CONTEXT",
    "IDENTIFIER_PATTERN",
    "Bool",
    "EdgeContext",
    "EdgeRules",
    "Float",
    "FloatMap",
    "Identifier",
    "IdentifierList",
    "Int",
    "IntMap",
    "JsonBound",
    "JsonList",
    "JsonObject",
    "StrMap",
    "TextList",
    "check_json",
    "edge_context",
    "first_forbidden_char",
    "strip_annotated",
]

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
FORBIDDEN_CHARS = (
    "\x00-\x1f\x7f-\x9f"  # C0 controls (NUL, tab, newline, escape, ...), DEL and C1 controls
    "\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069"  # bidirectional marks, embeddings, overrides
    "\u200b-\u200d\u2060\ufeff"  # zero-width characters: invisible look-alike ids
    "\u2028\u2029"  # line and paragraph separators: a new line to many log viewers
)
IDENTIFIER_PATTERN = f"^[^{FORBIDDEN_CHARS}]*$"
"""What an identifier may hold: anything but control, bidi, zero-width and line-break characters."""
EDGE_CONTEXT = "novacron.edge"
"""Key of the EdgeContext in a pydantic validation context."""

Identifier = Annotated[str, StringConstraints(pattern=IDENTIFIER_PATTERN)]
"""Ids, names and other single-line fields (length limits stay per field)."""
Float = Annotated[float, Strict()]
"""A finite number (JSON integers are fine); never a boolean or a string."""
Int = Annotated[int, Strict(), Le(INT64_MAX)]
"""An integer that fits ClickHouse's Int64; never a boolean, a float or a string.

Only the upper bound is part of the type: a field's own `ge` would replace a lower bound here
(pydantic keeps the last constraint of a kind), and every Int field sets one."""
Bool = Annotated[bool, Strict()]
"""`true` or `false` only (not 1, "yes" or "off")."""


class EdgeRules(BaseModel):
    """Limits every record must respect when it is decoded; a violation is dead-lettered."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    max_depth: int = Field(default=64, ge=1, le=200)
    """Deepest nesting of objects and lists inside one free-form field (orjson stops at 254)."""
    max_object_keys: int = Field(default=10_000, ge=1)
    """Most keys in one JSON object."""
    max_list_items: int = Field(default=10_000, ge=1)
    """Most items in one JSON list."""
    max_total_items: int = Field(default=100_000, ge=1)
    """Most keys plus list items in one field, all levels together."""
    max_string_chars: int = Field(default=262_144, ge=1)
    """Longest string (value or object key) inside a free-form field; typed fields have their
    own limits."""
    max_age_days: float | None = Field(default=None, gt=0)
    """Oldest accepted `event_time`, in days before now; unset means the history retention
    (`clickhouse.ttl_days`), which it may not exceed: older rows are dropped on insert."""
    max_future_seconds: float = Field(default=3600.0, ge=0)
    """How far ahead of this worker's clock an `event_time` may be (clock skew allowance)."""

    DEFAULT_MAX_AGE_DAYS: typing.ClassVar[float] = 365.0
    """Used when `max_age_days` is unset and no settings resolved it (the default ttl_days)."""

    def age_limit(self) -> timedelta:
        """The oldest accepted event age."""
        return timedelta(days=self.max_age_days or self.DEFAULT_MAX_AGE_DAYS)


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class EdgeContext:
    """What validators read from the validation context: the rules and the clock."""

    rules: EdgeRules
    clock: Callable[[], datetime] = _utcnow
    ahead: timedelta = field(init=False)
    oldest: timedelta = field(init=False)
    most_keys: int = field(init=False)
    most_items: int = field(init=False)

    def __post_init__(self) -> None:
        # computed once: these checks run for every decoded record
        rules = self.rules
        object.__setattr__(self, "ahead", timedelta(seconds=rules.max_future_seconds))
        object.__setattr__(self, "oldest", rules.age_limit())
        object.__setattr__(self, "most_keys", min(rules.max_object_keys, rules.max_total_items))
        object.__setattr__(self, "most_items", min(rules.max_list_items, rules.max_total_items))

    def pinned(self) -> EdgeContext:
        """The same rules with the clock read once now (one reading judges a whole batch)."""
        now = self.clock()
        return EdgeContext(self.rules, lambda: now)

    def check_time(self, value: datetime, latest_wins: bool) -> None:
        """Refuse an event time outside the window (only the future bound for state topics)."""
        now = self.clock()
        if now - self.oldest <= value <= now + self.ahead or (latest_wins and value <= now):
            return  # the common case first: inside the window
        if value > now + self.ahead:
            raise _violation(
                f"{value.isoformat()} is more than {_span(self.ahead)} ahead of now "
                f"({now.isoformat(timespec='seconds')}); fix the producer's clock or time field"
            )
        if not latest_wins and value < now - self.oldest:
            raise _violation(
                f"{value.isoformat()} is older than the {_span(self.oldest)} history "
                "retention (edge.max_age_days / clickhouse.ttl_days): it would never be stored"
            )


def edge_context(rules: EdgeRules, clock: Callable[[], datetime] | None = None) -> dict[str, Any]:
    """A pydantic validation context that applies `rules` (`model_validate(data, context=...)`)."""
    return {EDGE_CONTEXT: EdgeContext(rules, clock or _utcnow)}


def _span(delta: timedelta) -> str:
    seconds = delta.total_seconds()
    if seconds >= 86_400:
        return f"{seconds / 86_400:g}-day"
    return f"{seconds / 3600:g} h" if seconds >= 3600 else f"{seconds:g} s"


def _violation(reason: str) -> PydanticCustomError:
    # a custom error keeps the reason as written (no "Value error, " prefix); braces in the
    # reason are safe because it is passed as context, not as the template
    return PydanticCustomError("edge_rule", "{reason}", {"reason": reason})


def _pointer(path: tuple[Any, ...]) -> str:
    parts = [str(p).replace("~", "~0").replace("/", "~1") for p in path]
    if len(parts) > 8:
        parts = [*parts[:3], f"…({len(parts) - 6} more)…", *parts[-3:]]
    text = "/" + "/".join(parts) if parts else "the top level"
    return text if len(text) <= 200 else text[:197] + "..."


def check_json(value: Any, rules: EdgeRules, extra_depth: int = 0) -> None:
    """Raise a dead-letter reason for the first limit `value` (a JSON object or list) breaks.

    Values come from the JSON and Avro parsers here: keys are strings, numbers are finite and
    fit 64 bits, so only shape and length are checked. A cheap test on the serialised value
    vouches for most values; the others are walked, and a refused one walked again to say where.
    """
    max_depth = rules.max_depth + extra_depth
    if not (_plainly_within(value, rules, max_depth) or _within(value, rules, max_depth)):
        raise _violation(_first_breach(value, rules, max_depth))


def _plainly_within(value: Any, rules: EdgeRules, max_depth: int) -> bool:
    """A sufficient test in C: a string has no more characters than the serialised value has
    bytes, nesting is no deeper than the number of brackets, and every key or item but the
    first of each container is preceded by a comma."""
    try:
        blob = orjson.dumps(value)
    except orjson.JSONEncodeError:  # deeper than orjson writes (254 levels): walk and refuse
        return False
    if len(blob) > rules.max_string_chars:
        return False
    containers = blob.count(b"{") + blob.count(b"[")
    entries = blob.count(b",") + containers  # an upper bound of keys plus items
    most = min(rules.max_object_keys, rules.max_list_items, rules.max_total_items)
    return containers <= max_depth and entries <= most


def _within(value: Any, rules: EdgeRules, max_depth: int) -> bool:
    # the exact test, in one pass without paths or messages; iterative, so a hostile depth
    # cannot exhaust the stack
    max_str, max_keys = rules.max_string_chars, rules.max_object_keys
    max_items = rules.max_list_items
    budget = rules.max_total_items
    stack = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        size = len(node)
        budget -= size
        if depth > max_depth or budget < 0:
            return False
        if type(node) is dict:
            if size > max_keys or (size and max(map(len, node)) > max_str):
                return False
            node = node.values()
        elif size > max_items:
            return False
        for item in node:
            kind = type(item)
            if kind is str:
                if len(item) > max_str:
                    return False
            elif kind is dict or kind is list:
                stack.append((item, depth + 1))
    return True


def _first_breach(value: Any, rules: EdgeRules, max_depth: int) -> str:
    """What `_within` refused, and where (a JSON pointer), for the dead letter's reason."""
    budget = rules.max_total_items
    stack: list[tuple[Any, int, tuple[Any, ...]]] = [(value, 1, ())]
    while stack:
        node, depth, path = stack.pop()
        if depth > max_depth:
            return f"nested deeper than {max_depth} levels at {_pointer(path)}"
        limit, word = ((rules.max_object_keys, "keys") if type(node) is dict
                       else (rules.max_list_items, "items"))
        if len(node) > limit:
            what = "object" if type(node) is dict else "list"
            return f"{what} at {_pointer(path)} has {len(node)} {word}, above the {limit} limit"
        budget -= len(node)
        if budget < 0:
            return f"more than {rules.max_total_items} keys and list items in total"
        entries = node.items() if type(node) is dict else enumerate(node)
        for key, item in entries:
            if type(key) is str and len(key) > rules.max_string_chars:
                return (f"a key of {len(key)} characters at {_pointer(path)}, "
                        f"above the {rules.max_string_chars} limit")
            if type(item) is str and len(item) > rules.max_string_chars:
                return (f"string of {len(item)} characters at {_pointer((*path, key))}, "
                        f"above the {rules.max_string_chars} limit")
            if type(item) in (dict, list):
                stack.append((item, depth + 1, (*path, key)))
    return "breaks the edge limits"  # pragma: no cover - _within and this walk agree


class JsonBound:
    """The validator of a bounded field: applies the limits when validating at the edge.

    `flat` fields (typed maps and lists of strings or numbers) are one level deep by their type,
    so counts and lengths are checked directly; free-form JSON goes through `check_json`.
    """

    def __init__(self, extra_depth: int = 0, flat: Literal["strings", "numbers"] | None = None):
        self.extra_depth = extra_depth
        self.flat = flat

    def __call__(self, value: Any, info: ValidationInfo) -> Any:
        context = info.context
        edge = context.get(EDGE_CONTEXT) if context and value else None
        if edge is not None and not (self.flat and _flat_within(value, edge, self.flat)):
            check_json(value, edge.rules, self.extra_depth)
        return value


def _flat_within(value: dict[str, Any] | list[Any], edge: EdgeContext, flat: str) -> bool:
    longest = edge.rules.max_string_chars
    if type(value) is dict:
        if len(value) > edge.most_keys or max(map(len, value)) > longest:
            return False
        return flat != "strings" or max(map(len, value.values())) <= longest
    return len(value) <= edge.most_items and (flat != "strings" or max(map(len, value)) <= longest)


def _bounded(extra_depth: int = 0, flat: Literal["strings", "numbers"] | None = None
             ) -> AfterValidator:
    return AfterValidator(JsonBound(extra_depth, flat))


JsonObject = Annotated[dict[str, Any], _bounded()]
"""A free-form JSON object (a config snapshot, action parameters, details), bounded at the edge."""
JsonList = Annotated[list[dict[str, Any]], _bounded(extra_depth=2)]
"""A list of JSON objects holding values of other fields (drift changes: list, change, value)."""
StrMap = Annotated[dict[Identifier, str], _bounded(flat="strings")]
"""String labels: identifier keys, bounded values."""
FloatMap = Annotated[dict[Identifier, Float], _bounded(flat="numbers")]
"""Named numbers (extra metrics, a decision's state or expected impact)."""
IntMap = Annotated[dict[Identifier, Annotated[Int, Ge(INT64_MIN)]], _bounded(flat="numbers")]
"""Named integers (policy versions)."""
TextList = Annotated[list[str], _bounded(flat="strings")]
"""A list of free text (reasons, JSON pointers, proposed actions)."""
IdentifierList = Annotated[list[Identifier], _bounded(flat="strings")]
"""A list of identifiers (standard references)."""


def first_forbidden_char(text: str) -> tuple[int, str] | None:
    """Position and code point (`U+000A`) of the first character an Identifier refuses."""
    import re

    found = re.search(f"[{FORBIDDEN_CHARS}]", text)
    return None if found is None else (found.start(), f"U+{ord(found.group()):04X}")


def strip_annotated(annotation: Any) -> Any:
    """The annotation without `Annotated[...]` wrappers, also inside dict, list and unions."""
    origin, args = get_origin(annotation), get_args(annotation)
    if origin is Annotated:
        return strip_annotated(args[0])
    if origin in (dict, list):
        return origin[tuple(strip_annotated(a) for a in args)]
    if origin in (typing.Union, types.UnionType):
        return typing.Union[tuple(strip_annotated(a) for a in args)]  # noqa: UP007
    return annotation
