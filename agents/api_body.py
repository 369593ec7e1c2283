"""Request bodies of the control API: JSON, bounded in nesting and value count before use."""

from __future__ import annotations

from typing import Any

import orjson

__all__ = ["check_shape", "parse_body"]


def parse_body(body: bytes | str | None, max_depth: int, max_nodes: int) -> Any:
    """The parsed body ({} when empty); ValueError (→ 400) when not JSON or out of bounds."""
    if body is None or body in (b"", ""):
        return {}
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        msg = f"body is not JSON: {exc}"
        raise ValueError(msg) from exc
    check_shape(value, max_depth, max_nodes)
    return value


def check_shape(value: Any, max_depth: int, max_nodes: int) -> None:
    """ValueError when a value is nested too deeply or holds too many values (iterative: a
    hostile body must not exhaust the stack here or in the engine's canonical JSON later)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    nodes = 0
    while stack:
        item, depth = stack.pop()
        nodes += 1
        if nodes > max_nodes:
            msg = f"body holds more than {max_nodes} values"
            raise ValueError(msg)
        if isinstance(item, dict | list):
            if depth > max_depth:
                msg = f"body is nested deeper than {max_depth} levels"
                raise ValueError(msg)
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)
