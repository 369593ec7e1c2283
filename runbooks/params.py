"""Declared runbook parameters: type, bounds, default, who may set them; strict value checks."""

from __future__ import annotations

import json
import math
import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = [
    "CONFIG_KINDS",
    "IDENTITY",
    "ParamError",
    "Parameter",
    "check_value",
    "infer",
]

ParamType = Literal["string", "integer", "number", "boolean", "list", "object"]
ItemType = Literal["string", "integer", "number", "boolean", "object", "any"]
Kind = Literal["value", "endpoint", "credential", "webhook"]

CONFIG_KINDS: frozenset[str] = frozenset({"endpoint", "credential", "webhook"})
"""Kinds whose values come only from the runbook file or the executor's configuration."""
IDENTITY: frozenset[str] = frozenset(
    {"resource_id", "action_id", "action_type", "decision_id", "dry_run"}
)
"""Variables the executor sets from the Action itself; never parameters, never overrides."""


class ParamError(ValueError):
    """A value does not fit its parameter; the message says which rule it breaks."""


class Parameter(BaseModel):
    """One `${var}` a runbook declares: its type, bounds, default and who may set it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    type: ParamType
    """string, integer, number, boolean, list or object (booleans are not integers)."""
    items: ItemType = "string"
    """Type of a list's items (`any`: any JSON value, size-bounded like an object)."""
    default: Any = None
    """Value when nobody sets it; absent (and not nullable) means the value is required."""
    nullable: bool = False
    """null is a valid value (and the default when no default is given)."""
    overridable: bool = False
    """Events (decision params) may set it; endpoint/credential/webhook kinds never may."""
    kind: Kind = "value"
    """value, or endpoint / credential / webhook: set only by the file or the executor config."""
    minimum: int | float | None = None
    """Smallest allowed number (integer and number types)."""
    maximum: int | float | None = None
    """Largest allowed number."""
    enum: list[Any] | None = None
    """The allowed values (for lists: the allowed items)."""
    pattern: str | None = None
    """Regular expression a string (or each string item) must match as a whole."""
    max_length: int | None = Field(default=None, ge=0)
    """Longest string (or string item), in characters."""
    max_items: int | None = Field(default=None, ge=0)
    """Most items of a list."""
    max_bytes: int = Field(default=65_536, ge=2)
    """Largest object, as compact JSON."""
    max_depth: int = Field(default=32, ge=1, le=200)
    """Deepest nesting of an object (policies and history need bounded depth)."""
    description: str = ""
    """What it means, for people and policies."""

    @model_validator(mode="after")
    def _consistent(self) -> Parameter:
        if self.kind in CONFIG_KINDS and self.overridable:
            msg = (
                f"a {self.kind} parameter is never overridable by events "
                "(it comes from the runbook file or the executor configuration)"
            )
            raise ValueError(msg)
        if self.pattern is not None:
            re.compile(self.pattern)
        return self

    @property
    def required(self) -> bool:
        """No default and not nullable: someone must set it."""
        return self.default is None and not self.nullable

    def describe(self) -> dict[str, Any]:
        """The schema facts policies see (no values)."""
        out: dict[str, Any] = {
            "type": self.type,
            "kind": self.kind,
            "overridable": self.overridable,
        }
        if self.type == "list":
            out["items"] = self.items
        for key in ("minimum", "maximum", "enum", "max_length", "max_items"):
            if getattr(self, key) is not None:
                out[key] = getattr(self, key)
        return out


def infer(value: Any) -> Parameter:
    """The implicit declaration of a legacy `variables:` entry: typed by its value, fixed."""
    if isinstance(value, bool):
        return Parameter(type="boolean", default=value)
    if isinstance(value, int):
        return Parameter(type="integer", default=value)
    if isinstance(value, float):
        return Parameter(type="number", default=value)
    if isinstance(value, list):
        return Parameter(type="list", items=_item_type(value), default=value)
    if isinstance(value, dict):
        return Parameter(type="object", default=value)
    if value is None:
        return Parameter(type="string", nullable=True)
    return Parameter(type="string", default=str(value))


def _item_type(values: list[Any]) -> ItemType:
    kinds = {infer(v).type for v in values} or {"string"}
    only = kinds.pop() if len(kinds) == 1 else "any"
    return {"string": "string", "integer": "integer", "number": "number",
            "boolean": "boolean", "object": "object"}.get(only, "any")  # type: ignore[return-value]


def check_value(spec: Parameter, value: Any) -> Any:
    """The value in its canonical type (integers as int, numbers as float); ParamError if bad."""
    if value is None:
        if spec.nullable:
            return None
        raise ParamError("must not be null")
    if spec.type == "list":
        return _check_list(spec, value)
    out = _check_scalar(spec, spec.type, value)
    if spec.enum is not None and out not in spec.enum:
        raise ParamError(f"must be one of {spec.enum}")
    return out


def _check_list(spec: Parameter, value: Any) -> list[Any]:
    if not isinstance(value, list):
        raise ParamError(f"must be a list, not {_kind(value)}")
    if spec.max_items is not None and len(value) > spec.max_items:
        raise ParamError(f"has {len(value)} items, more than {spec.max_items}")
    out = []
    for i, item in enumerate(value):
        try:
            checked = _check_scalar(spec, spec.items, item)
        except ParamError as exc:
            raise ParamError(f"item {i} {exc}") from None
        if spec.enum is not None and checked not in spec.enum:
            raise ParamError(f"item {i} must be one of {spec.enum}")
        out.append(checked)
    return out


def _check_scalar(spec: Parameter, kind: str, value: Any) -> Any:
    if kind == "string":
        return _check_string(spec, value)
    if kind == "boolean":
        if not isinstance(value, bool):
            raise ParamError(f"must be a boolean, not {_kind(value)}")
        return value
    if kind in ("integer", "number"):
        return _check_number(spec, kind, value)
    if kind == "object" and not isinstance(value, dict):
        raise ParamError(f"must be an object, not {_kind(value)}")
    return _check_json(spec, value)


def _check_string(spec: Parameter, value: Any) -> str:
    if not isinstance(value, str):
        raise ParamError(f"must be a string, not {_kind(value)}")
    if spec.max_length is not None and len(value) > spec.max_length:
        raise ParamError(f"is longer than {spec.max_length} characters")
    if spec.pattern is not None and re.fullmatch(spec.pattern, value) is None:
        raise ParamError(f"does not match the pattern {spec.pattern!r}")
    return value


def _check_number(spec: Parameter, kind: str, value: Any) -> int | float:
    # bool is an int subclass and "1000" is text: neither is a number here
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ParamError(f"must be {'an integer' if kind == 'integer' else 'a number'}, "
                         f"not {_kind(value)}")
    if not math.isfinite(value):
        raise ParamError("must be a finite number")
    if kind == "integer":
        if isinstance(value, float) and not value.is_integer():
            raise ParamError("must be an integer")
        value = int(value)
    else:
        value = float(value)
    if spec.minimum is not None and value < spec.minimum:
        raise ParamError(f"must be at least {spec.minimum:g}")
    if spec.maximum is not None and value > spec.maximum:
        raise ParamError(f"must be at most {spec.maximum:g}")
    return value


def _depth(value: Any, limit: int) -> bool:
    """Whether a JSON value nests no deeper than limit (iterative: hostile values are deep)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            if depth > limit:
                return False
            stack.extend((v, depth + 1) for v in (item.values() if isinstance(item, dict)
                                                  else item))
    return True


def _check_json(spec: Parameter, value: Any) -> Any:
    if not _depth(value, spec.max_depth):
        raise ParamError(f"is nested deeper than {spec.max_depth} levels")
    try:
        size = len(json.dumps(value, allow_nan=False, separators=(",", ":")))
    except (TypeError, ValueError, RecursionError) as exc:
        raise ParamError(f"is not a JSON value ({type(exc).__name__})") from None
    if size > spec.max_bytes:
        raise ParamError(f"is {size} bytes of JSON, more than {spec.max_bytes}")
    return value


def _kind(value: Any) -> str:
    names = {bool: "a boolean", int: "an integer", float: "a number", str: "a string",
             list: "a list", dict: "an object"}
    shown = f" ({repr(value)[:40]})" if isinstance(value, str | bool | int | float) else ""
    return names.get(type(value), type(value).__name__) + shown
