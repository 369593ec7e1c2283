"""Evaluate resources against the control library: one regopy bundle, one query per resource."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Protocol

import orjson

from policies._rego_input import make_input, new_interpreter
from policies.compliance.library import ControlLibrary
from schemas.errors import NonRetryableError, RejectedError

__all__ = ["ControlEvaluator", "FakeEvaluator", "RegoEvaluator", "wrapper_module"]

_WRAPPER = "novacron_compliance_dispatch"


class ControlEvaluator(Protocol):
    """Which controls a resource fails (the seam between the scanner and regopy)."""

    def failing(self, resource_type: str, config: Mapping[str, Any]) -> frozenset[str]:
        """Ids of the controls for `resource_type` that `config` violates."""
        ...


class FakeEvaluator:
    """Answers from a function (tests of the scanner and agent without regopy)."""

    def __init__(self, rule: Any) -> None:
        self.rule = rule  # (resource_type, config) -> iterable of failing control ids
        self.calls = 0

    def failing(self, resource_type: str, config: Mapping[str, Any]) -> frozenset[str]:
        self.calls += 1
        return frozenset(self.rule(resource_type, config))


def _rule_name(resource_type: str) -> str:
    # Types are Terraform identifiers already; the prefix keeps them clear of Rego keywords.
    return "t_" + re.sub(r"\W", "_", resource_type)


def wrapper_module(library: ControlLibrary) -> str:
    """A package with one rule per resource type: the union of its packages' `deny` sets."""
    lines = [f"package {_WRAPPER}", "", "import rego.v1", ""]
    for t in library.types():
        union = " | ".join(f"data.{pkg}.deny" for pkg in library.packages_for(t))
        lines.append(f"{_rule_name(t)} := {union}")
    return "\n".join(lines) + "\n"


class RegoEvaluator:
    """Compiles the whole library once (lazily) and reuses the bundle for every resource."""

    def __init__(self, library: ControlLibrary) -> None:
        self.library = library
        self._interp: Any = None
        self._bundle: Any = None
        self._ids = {t: frozenset(c.id for c in cs) for t, cs in library.by_type.items()}
        self.evaluations = 0

    def compile(self) -> None:
        """Build the bundle now (it is otherwise built on the first evaluation)."""
        interp = new_interpreter()
        try:
            for name, source in self.library.modules.items():
                interp.add_module(name, source)
            interp.add_module(f"{_WRAPPER}.rego", wrapper_module(self.library))
            entrypoints = [f"{_WRAPPER}/{_rule_name(t)}" for t in self.library.types()]
            self._bundle = interp.build(None, entrypoints)
        except Exception as exc:
            first = " | ".join(str(exc).strip().splitlines()[:3])
            raise RejectedError(f"compliance library does not compile: {first}") from exc
        self._interp = interp

    def failing(self, resource_type: str, config: Mapping[str, Any]) -> frozenset[str]:
        ids = self._ids.get(resource_type)
        if not ids:
            return frozenset()  # no control applies: no query at all
        if self._bundle is None:
            self.compile()
        self._interp.set_input(make_input({"type": resource_type, "config": config}))
        out = self._interp.query_bundle_entrypoint(
            self._bundle, f"{_WRAPPER}/{_rule_name(resource_type)}"
        )
        self.evaluations += 1
        text = str(out)
        if not out.ok() or not text.startswith("{"):
            msg = f"evaluation of {resource_type} failed: {text.strip()[:300]}"
            raise NonRetryableError(msg)
        found = orjson.loads(text)["expressions"][0]
        # A rule that forgot its type guard must not leak into another type's results.
        return frozenset(found) & ids
