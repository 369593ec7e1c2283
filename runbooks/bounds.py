"""Event-set parameters that reach an effector must be bounded by their declaration.

A value from a decision may end up in a commit, a Terraform variable, a Kubernetes patch or an
AWS call. Typing alone is not enough there: an overridable string must declare a `pattern` or
an `enum`, a number its `minimum` and `maximum`, a list its `max_items` (and bounded items);
objects may be written as data by git and terraform steps (their size and depth are always
bounded), never merged into a Kubernetes patch or sent to AWS.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from runbooks.interpolate import VAR
from runbooks.params import Parameter
from runbooks.positions import StepView

__all__ = ["EFFECT_DATA", "data_uses", "unbounded"]

EFFECT_DATA: dict[str, tuple[str, ...]] = {
    "git": ("changes", "message", "create", "commit", "repository"),
    "terraform": ("variables",),
    "kubernetes": ("patch", "replicas", "add", "remove", "minimum", "maximum"),
    "aws": ("capacity", "add", "remove", "minimum", "maximum", "rules", "algorithm"),
}
"""Per effector step type: the parameters whose values reach the target system as data."""
_STRUCTURED_OK = frozenset({"git", "terraform"})


def _vars(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield from (m.group(2) for m in VAR.finditer(value) if not m.group(1))
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield from _vars(key)
            yield from _vars(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _vars(item)


def data_uses(step: StepView) -> list[tuple[str, str]]:
    """(variable, where) for every `${var}` an effector step sends to its target as data."""
    return [(var, f"parameters.{name}") for name in EFFECT_DATA.get(step.kind, ())
            for var in _vars(step.parameters.get(name))]


def _why(spec: Parameter, kind: str) -> str | None:
    if spec.type == "string" and spec.pattern is None and spec.enum is None:
        return "a string needs a pattern or an enum"
    if spec.type in ("integer", "number") and (spec.minimum is None or spec.maximum is None):
        return "a number needs a minimum and a maximum"
    if spec.type == "list":
        if spec.max_items is None:
            return "a list needs max_items"
        if spec.items == "string" and spec.pattern is None and spec.enum is None:
            return "its string items need a pattern or an enum"
        if spec.items in ("object", "any") and kind not in _STRUCTURED_OK:
            return f"structured items never reach a {kind} call"
    if spec.type == "object" and kind not in _STRUCTURED_OK:
        return f"an object is never merged into a {kind} call"
    return None


def unbounded(step: StepView, parameters: Mapping[str, Parameter]) -> list[str]:
    """Problems: overridable parameters that reach an effector without bounds."""
    problems = []
    for var, where in data_uses(step):
        spec = parameters.get(var)
        if spec is None or not spec.overridable:
            continue
        why = _why(spec, step.kind)
        if why:
            problems.append(f"step {step.id}: parameter {var} reaches {step.kind} "
                            f"{where} from events unbounded ({why})")
    return problems
