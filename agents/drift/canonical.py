"""Canonical JSON of a config (sorted keys, normalised numbers and empties) and its SHA-256."""

from __future__ import annotations

import hashlib
from typing import Any

import orjson

__all__ = ["canonical_bytes", "canonical_hash", "is_empty", "normalise", "raw_bytes"]

_OPTS = orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS
_SAFE_INT = 2**53  # beyond this a float is not an exact integer in JSON readers


def is_empty(value: Any) -> bool:
    """None, "", [] and {} — the values that `empty_equivalent` treats as absent."""
    return value is None or (type(value) in (str, list, dict, tuple) and len(value) == 0)


def normalise(value: Any, empty_equivalent: bool = True) -> Any:
    """A copy with integral floats as ints (1.0 → 1) and, when asked, empties collapsed.

    With `empty_equivalent`, a dict entry whose value is None/""/[]/{} is dropped and an empty
    container or string becomes None, so "absent", null, "" and [] all compare equal — the
    difference between them is an API serialisation detail, not drift. Bools stay bools.
    """
    kind = type(value)
    if kind is dict:
        out = {}
        for key, item in value.items():
            sub = type(item)
            if sub is int or sub is bool or (sub is str and (item or not empty_equivalent)):
                out[str(key)] = item  # the common leaf: nothing to normalise, skip the call
                continue
            norm = normalise(item, empty_equivalent)
            if norm is None and empty_equivalent:
                continue
            out[str(key)] = norm
        return None if (empty_equivalent and not out) else out
    if kind is list or kind is tuple:
        items = [normalise(item, empty_equivalent) for item in value]
        return None if (empty_equivalent and not items) else items
    if kind is float:
        if value.is_integer() and -_SAFE_INT < value < _SAFE_INT:
            return int(value)
        return value
    if kind is str and empty_equivalent and not value:
        return None
    return value


def raw_bytes(value: Any) -> bytes:
    """Sorted-key JSON of the value as given (no normalisation): the cheapest identity check."""
    return orjson.dumps(value, option=_OPTS)


def canonical_bytes(value: Any, empty_equivalent: bool = True) -> bytes:
    """Canonical JSON: sorted keys, normalised numbers and empties, compact separators."""
    norm = normalise(value, empty_equivalent)
    return orjson.dumps({} if norm is None else norm, option=_OPTS)


def canonical_hash(value: Any, empty_equivalent: bool = True) -> str:
    """SHA-256 hex digest of the canonical JSON."""
    return hashlib.sha256(canonical_bytes(value, empty_equivalent)).hexdigest()
