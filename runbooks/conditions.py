"""`when` conditions: a tiny, safe expression language over variables and step results."""

from __future__ import annotations

import ast
import operator
from collections.abc import Mapping
from typing import Any

__all__ = ["ConditionError", "evaluate", "names", "parse"]

_COMPARE: dict[type[ast.cmpop], Any] = {
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
    ast.In: lambda a, b: a in b,
    ast.NotIn: lambda a, b: a not in b,
}
_ALLOWED = (
    ast.Expression,
    ast.BoolOp,
    ast.And,
    ast.Or,
    ast.UnaryOp,
    ast.Not,
    ast.Compare,
    ast.Name,
    ast.Load,
    ast.Constant,
    ast.Subscript,
    ast.List,
    ast.Tuple,
    *_COMPARE,
)


class ConditionError(ValueError):
    """The condition is not in the allowed language or refers to something unknown."""


def parse(text: str) -> ast.Expression:
    """Parse and check a condition: comparisons, and/or/not, names, constants, subscripts."""
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError as exc:
        raise ConditionError(f"invalid condition {text!r}: {exc.msg}") from exc
    for node in ast.walk(tree):
        if not isinstance(node, _ALLOWED):
            raise ConditionError(f"{type(node).__name__} is not allowed in a condition: {text!r}")
    return tree


def names(text: str) -> set[str]:
    """The free names a condition reads (variables, or `steps`)."""
    return {n.id for n in ast.walk(parse(text)) if isinstance(n, ast.Name)}


def evaluate(text: str, scope: Mapping[str, Any]) -> bool:
    """Evaluate a condition against variables and `steps` (id → {status, output})."""
    return bool(_eval(parse(text).body, scope))


def _eval(node: ast.AST, scope: Mapping[str, Any]) -> Any:
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Name):
        if node.id not in scope:
            raise ConditionError(f"unknown name {node.id!r}")
        return scope[node.id]
    if isinstance(node, ast.List | ast.Tuple):
        return [_eval(e, scope) for e in node.elts]
    if isinstance(node, ast.Subscript):
        container = _eval(node.value, scope)
        try:
            return container[_eval(node.slice, scope)]
        except (KeyError, IndexError, TypeError):
            return None  # a missing output reads as None, so `x == None` can test for it
    if isinstance(node, ast.UnaryOp):
        return not _eval(node.operand, scope)
    if isinstance(node, ast.BoolOp):
        values = (_eval(v, scope) for v in node.values)
        return all(values) if isinstance(node.op, ast.And) else any(values)
    if isinstance(node, ast.Compare):
        return _compare(node, scope)
    raise ConditionError(f"{type(node).__name__} is not allowed")  # pragma: no cover


def _compare(node: ast.Compare, scope: Mapping[str, Any]) -> bool:
    left = _eval(node.left, scope)
    for op, comparator in zip(node.ops, node.comparators, strict=True):
        right = _eval(comparator, scope)
        try:
            if not _COMPARE[type(op)](left, right):
                return False
        except TypeError:
            return False
        left = right
    return True
