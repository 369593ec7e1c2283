"""The JSON limits themselves: the cheap test on the serialised value and the exact walk both
agree with a plain recursive reference, at every limit's boundary."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic_core import PydanticCustomError

from schemas.edge import EdgeRules, check_json

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-10, 10) | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=8)
    | st.dictionaries(st.text(max_size=12), inner, max_size=8),
    max_leaves=40,
)


def reference(value: Any, rules: EdgeRules) -> bool:
    """The limits as written, recursively (fine for small test values)."""
    total = 0

    def ok(node: Any, depth: int) -> bool:
        nonlocal total
        if isinstance(node, str):
            return len(node) <= rules.max_string_chars
        if not isinstance(node, (dict, list)):
            return True
        total += len(node)
        limit = rules.max_object_keys if isinstance(node, dict) else rules.max_list_items
        keys = node.keys() if isinstance(node, dict) else []
        values = node.values() if isinstance(node, dict) else node
        return (depth <= rules.max_depth and len(node) <= limit
                and all(len(k) <= rules.max_string_chars for k in keys)
                and all(ok(v, depth + 1) for v in values))

    return ok(value, 1) and total <= rules.max_total_items


def measures(value: Any) -> dict[str, int]:
    """The value's depth, most keys, most items, total, and longest string or key."""
    out = {"depth": 0, "keys": 0, "items": 0, "total": 0, "chars": 0}

    def walk(node: Any, depth: int) -> None:
        if isinstance(node, str):
            out["chars"] = max(out["chars"], len(node))
        elif isinstance(node, (dict, list)):
            out["depth"] = max(out["depth"], depth)
            out["keys" if isinstance(node, dict) else "items"] = max(
                out["keys" if isinstance(node, dict) else "items"], len(node))
            out["total"] += len(node)
            for k in node if isinstance(node, dict) else []:
                out["chars"] = max(out["chars"], len(k))
            for v in node.values() if isinstance(node, dict) else node:
                walk(v, depth + 1)

    walk(value, 1)
    return out


# every limit at, just below or just above what the value has, or far above: both tiers (the
# test on the serialised value and the exact walk) meet values right at their boundaries
@given(value=st.dictionaries(st.text(max_size=12), JSON_VALUES, max_size=8),
       deltas=st.lists(st.sampled_from([-1, 0, 1, 100_000]), min_size=5, max_size=5))
@settings(max_examples=300, deadline=None)
def test_check_json_agrees_with_the_reference(value: dict[str, Any], deltas: list[int]) -> None:
    m = measures(value)
    limit = {k: max(1, m[k] + d) for k, d in zip(m, deltas, strict=True)}
    rules = EdgeRules(max_depth=min(limit["depth"], 200), max_object_keys=limit["keys"],
                      max_list_items=limit["items"], max_total_items=limit["total"],
                      max_string_chars=limit["chars"])
    try:
        check_json(value, rules)
        verdict = True
    except PydanticCustomError as exc:
        verdict = False
        assert exc.context and "breaks the edge limits" not in exc.context["reason"]
    assert verdict == reference(value, rules)


SHAPES = {  # a value whose measure is 3, everything else small
    "max_depth": {"a": {"a": {"a": 1}}},
    "max_object_keys": {"a": 1, "b": 2, "c": 3},
    "max_list_items": {"a": [1, 2, 3]},
    "max_total_items": {"a": [1, 2]},
    "max_string_chars": {"a": "xyz"},
}


@pytest.mark.parametrize("path", ["fast", "exact"])
@pytest.mark.parametrize("limit", sorted(SHAPES))
def test_each_limit_at_and_below_the_boundary_on_both_tiers(limit: str, path: str) -> None:
    # "fast": strings may be long, so the test on the serialised value can vouch; "exact": the
    # serialised value is longer than the string limit, so only the walk can accept
    generous = {"max_depth": 100, "max_object_keys": 100, "max_list_items": 100,
                "max_total_items": 100, "max_string_chars": 100_000 if path == "fast" else 3}
    value = SHAPES[limit]
    check_json(value, EdgeRules(**{**generous, limit: 3}))
    with pytest.raises(PydanticCustomError):
        check_json(value, EdgeRules(**{**generous, limit: 2}))
