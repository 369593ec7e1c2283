"""Edits of a JSON/YAML document at RFC 6901 pointers: set, add, subtract, scale, remove, merge,
json_patch.

Pure functions over plain values: the `git` step reads a file, applies the runbook's changes here,
and writes it back; `expected` tells the post-condition check what the pushed file must hold.
A `${var}` inside a pointer fills exactly one token (`/` and `~` are escaped), so a value can
choose a key under the runbook's fixed parent, never another place in the document.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import jsonpatch

from runbooks.interpolate import VAR, Interpolator
from schemas.errors import NonRetryableError

__all__ = [
    "OPS",
    "Change",
    "EditError",
    "apply_changes",
    "get_at",
    "merge_patch",
    "parse_pointer",
    "render_changes",
]

OPS = frozenset({"set", "add", "subtract", "scale", "remove", "merge", "json_patch"})
"""What a change can do."""
_MISSING = object()


class EditError(NonRetryableError):
    """A change cannot be applied to the document as it is (wrong type, out of bounds, …)."""


@dataclass(frozen=True)
class Change:
    """One edit, its `${var}`s filled."""

    op: str
    path: str
    value: Any = None
    minimum: float | None = None
    maximum: float | None = None


def escape_token(text: str) -> str:
    """RFC 6901 escaping of one reference token."""
    return text.replace("~", "~0").replace("/", "~1")


def parse_pointer(pointer: str) -> list[str]:
    """The tokens of a JSON pointer ("" is the whole document)."""
    if pointer == "":
        return []
    if not pointer.startswith("/"):
        raise EditError(f"{pointer!r} is not a JSON pointer (it must start with '/')")
    return [t.replace("~1", "/").replace("~0", "~") for t in pointer[1:].split("/")]


def get_at(doc: Any, pointer: str, default: Any = _MISSING) -> Any:
    """The value at a pointer; `default` (or EditError) when absent."""
    node = doc
    for token in parse_pointer(pointer):
        if isinstance(node, Mapping) and token in node:
            node = node[token]
        elif isinstance(node, list) and token.isdigit() and int(token) < len(node):
            node = node[int(token)]
        elif default is not _MISSING:
            return default
        else:
            raise EditError(f"{pointer} does not exist in the document")
    return node


def _put(doc: Any, pointer: str, value: Any) -> Any:
    tokens = parse_pointer(pointer)
    if not tokens:
        return value
    node = doc
    for token in tokens[:-1]:
        if not isinstance(node, dict):
            raise EditError(f"{pointer}: a parent is not a mapping")
        node = node.setdefault(token, {})
    if not isinstance(node, dict):
        raise EditError(f"{pointer}: the parent is not a mapping")
    node[tokens[-1]] = value
    return doc


def _remove(doc: Any, pointer: str) -> Any:
    tokens = parse_pointer(pointer)
    if not tokens:
        raise EditError("cannot remove the whole document")
    parent = get_at(doc, "".join("/" + escape_token(t) for t in tokens[:-1]), None)
    if isinstance(parent, dict):
        parent.pop(tokens[-1], None)
    return doc


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch (null deletes a key; non-objects replace)."""
    if not isinstance(patch, Mapping):
        return copy.deepcopy(patch)
    out = dict(target) if isinstance(target, Mapping) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = merge_patch(out.get(key), value)
    return out


def _number(value: Any, what: str) -> float | int:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise EditError(f"{what} must be a number, not {type(value).__name__}")
    return value


def _bounded(change: Change, result: float | int) -> float | int:
    if change.minimum is not None and result < change.minimum:
        raise EditError(f"{change.path} would be {result:g}, below the minimum {change.minimum:g}")
    if change.maximum is not None and result > change.maximum:
        raise EditError(f"{change.path} would be {result:g}, above the maximum {change.maximum:g}")
    return result


def _apply(doc: Any, change: Change) -> Any:
    if change.op == "set":
        return _put(doc, change.path, copy.deepcopy(change.value))
    if change.op == "remove":
        return _remove(doc, change.path)
    if change.op in ("add", "subtract", "scale"):
        current = _number(get_at(doc, change.path, 0), f"{change.path} (current value)")
        operand = _number(change.value, f"the value of {change.op} at {change.path}")
        result = {"add": current + operand, "subtract": current - operand,
                  "scale": current * (1 + operand / 100)}[change.op]
        if isinstance(current, int) and change.op == "scale":
            result = round(result)
        return _put(doc, change.path, _bounded(change, result))
    if change.op == "merge":
        return _put(doc, change.path, merge_patch(get_at(doc, change.path, None), change.value))
    if change.op == "json_patch":
        if not isinstance(change.value, list):
            raise EditError(f"json_patch at {change.path} needs a list of RFC 6902 operations")
        try:
            patched = jsonpatch.apply_patch(get_at(doc, change.path, {}), change.value)
        except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException) as exc:
            raise EditError(f"json_patch at {change.path}: {exc}") from exc
        return _put(doc, change.path, patched)
    raise EditError(f"unknown change op {change.op!r} (known: {', '.join(sorted(OPS))})")


def apply_changes(doc: Any, changes: list[Change]) -> tuple[Any, dict[str, Any]]:
    """The edited document (the input is not modified) and, per changed pointer, the value the
    document must hold there afterwards (None for a removed key)."""
    out = copy.deepcopy(doc)
    for change in changes:
        out = _apply(out, change)
    expected = {c.path: (None if c.op == "remove" else get_at(out, c.path)) for c in changes}
    return out, expected


def _pointer(template: str, interp: Interpolator) -> str:
    return VAR.sub(lambda m: escape_token(str(interp.lookup(m.group(2), bool(m.group(1))))),
                   template)


def render_changes(raw: Any, interp: Interpolator, where: str) -> list[Change]:
    """The step's `changes` with `${var}`s filled: pointers token by token, values typed."""
    if not isinstance(raw, list) or not raw:
        raise NonRetryableError(f"{where}: parameters.changes must be a non-empty list")
    out = []
    for i, item in enumerate(raw):
        if not isinstance(item, Mapping) or item.get("op") not in OPS:
            raise NonRetryableError(f"{where}: change #{i + 1} needs op ∈ {sorted(OPS)}")
        bounds = {k: interp.value(item[k]) for k in ("minimum", "maximum") if k in item}
        out.append(Change(str(item["op"]), _pointer(str(item.get("path", "")), interp),
                          interp.value(item.get("value")), **bounds))
    return out
