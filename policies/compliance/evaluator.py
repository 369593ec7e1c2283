"""Evaluate resources against the control library: one regopy bundle, one query per resource.

Each query returns a three-valued verdict for every control of the resource's type: the ids
that fail on known values, and the ids that are unknown because an attribute they read is
unknown until apply (and nothing known already fails them). Every other control passes.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import orjson

from policies._rego_input import make_input, new_interpreter
from policies.compliance.library import ControlLibrary
from policies.compliance.resources import is_unknown
from schemas.errors import NonRetryableError, NovacronError, RejectedError

__all__ = [
    "DISPATCH_PACKAGE",
    "unknown_keys",
    "ControlEvaluator",
    "FakeEvaluator",
    "RegoEvaluator",
    "Verdicts",
    "evaluate_each",
    "input_for",
    "rule_name",
    "wrapper_module",
]

DISPATCH_PACKAGE = "novacron_compliance_dispatch"


@dataclass(frozen=True, slots=True)
class Verdicts:
    """Failing and unknown control ids of one resource (all others pass)."""

    failing: frozenset[str] = frozenset()
    unknown: frozenset[str] = frozenset()


class ControlEvaluator(Protocol):
    """Which controls a resource fails (the seam between the scanner and regopy)."""

    def evaluate(self, resource_type: str, config: Mapping[str, Any]) -> Verdicts:
        """Failing and unknown ids of the controls for `resource_type`."""
        ...

    def evaluate_batch(self, items: Sequence[tuple[str, Mapping[str, Any]]]
                       ) -> list[Verdicts | Exception]:
        """`evaluate` for many resources, in order; a resource that fails gets its error."""
        ...


def evaluate_each(evaluator: ControlEvaluator, items: Sequence[tuple[str, Mapping[str, Any]]]
                  ) -> list[Verdicts | Exception]:
    """One `evaluate` per item, each failure kept in its own slot (a bad one fails alone)."""
    out: list[Verdicts | Exception] = []
    for resource_type, config in items:
        try:
            out.append(evaluator.evaluate(resource_type, config))
        except (NovacronError, TypeError, ValueError) as exc:
            out.append(exc)
    return out


class FakeEvaluator:
    """Answers from a function (tests of the scanner and agent without regopy)."""

    def __init__(self, rule: Any, unknown: Any = None) -> None:
        self.rule = rule  # (resource_type, config) -> iterable of failing control ids
        self.unknown = unknown  # (resource_type, config) -> iterable of unknown ids, optional
        self.calls = 0

    def evaluate(self, resource_type: str, config: Mapping[str, Any]) -> Verdicts:
        self.calls += 1
        failing = frozenset(self.rule(resource_type, config))
        unknown = frozenset(self.unknown(resource_type, config)) if self.unknown else frozenset()
        return Verdicts(failing, unknown - failing)

    def evaluate_batch(self, items: Sequence[tuple[str, Mapping[str, Any]]]
                       ) -> list[Verdicts | Exception]:
        return evaluate_each(self, items)


def rule_name(resource_type: str) -> str:
    # Types are Terraform identifiers already; the prefix keeps them clear of Rego keywords.
    return "t_" + re.sub(r"\W", "_", resource_type)


def wrapper_module(library: ControlLibrary) -> str:
    """A package with one rule per resource type: {"fail": union of its packages' `deny`
    sets, "unknown": controls not failing whose read attributes hold an unknown value}."""
    lines = [f"package {DISPATCH_PACKAGE}", "",
             "import rego.v1", ""]
    for t in library.types():
        name = rule_name(t)
        union = " | ".join(f"data.{pkg}.deny" for pkg in library.packages_for(t))
        reads = {c.id: c.reads for c in library.by_type[t]}
        lines += [
            f"{name}_reads := {json.dumps(reads, sort_keys=True)}",
            f"{name}_fail := {union}",
            f"{name}_unknown := {{id |",
            # (rego-cpp rejects `some k, v in` inside a comprehension)
            f"\tsome id in object.keys({name}_reads)",
            f"\tnot id in {name}_fail",
            f"\tsome key in {name}_reads[id]",
            "\tkey in unknown_keys",
            "}",
            # rego-cpp rejects a comprehension inside an object literal: build it beside
            f'{name} := {{"fail": {name}_fail, "unknown": {name}_unknown}}',
            "",
        ]
    lines += [
        "# Top-level attributes holding an unknown value, each walked once per resource",
        "# (`*`: some attribute does).",
        "# Top-level attributes holding an unknown value (listed by the evaluator: walking the",
        "# config in Rego costs more than the rules), `*` when there is any.",
        "unknown_top := {k | some k in object.get(input, \"unknown\", [])}",
        "",
        'unknown_keys := unknown_top | {"*" | count(unknown_top) > 0}',
        "",
    ]
    return "\n".join(lines)


def unknown_keys(config: Mapping[str, Any]) -> list[str]:
    """Top-level attributes whose value holds the unknown-until-apply marker somewhere."""
    return sorted(k for k, v in config.items() if _holds_unknown(v))


def _holds_unknown(value: Any) -> bool:
    if isinstance(value, dict):
        return is_unknown(value) or any(_holds_unknown(v) for v in value.values())
    if isinstance(value, list):
        return any(_holds_unknown(v) for v in value)
    return False


def input_for(library: ControlLibrary, resource_type: str, config: Mapping[str, Any]
              ) -> dict[str, Any]:
    """The Rego input of one resource: type, config, control parameters, unknown attributes."""
    return {"type": resource_type, "config": config, "params": library.params_for(resource_type),
            "unknown": unknown_keys(config)}


class RegoEvaluator:
    """Compiles the whole library once (lazily) and reuses the bundle for every resource."""

    def __init__(self, library: ControlLibrary) -> None:
        self.library = library
        self._interp: Any = None
        self._bundle: Any = None
        self._ids = {t: frozenset(c.id for c in cs) for t, cs in library.by_type.items()}
        self._params = {t: library.params_for(t) for t in library.by_type}
        self.evaluations = 0

    def compile(self) -> None:
        """Build the bundle now (it is otherwise built on the first evaluation)."""
        interp = new_interpreter()
        try:
            for name, source in self.library.modules.items():
                interp.add_module(name, source)
            interp.add_module(f"{DISPATCH_PACKAGE}.rego", wrapper_module(self.library))
            entrypoints = [f"{DISPATCH_PACKAGE}/{rule_name(t)}" for t in self.library.types()]
            self._bundle = interp.build(None, entrypoints)
        except Exception as exc:
            first = " | ".join(str(exc).strip().splitlines()[:3])
            raise RejectedError(f"compliance library does not compile: {first}") from exc
        self._interp = interp

    def evaluate(self, resource_type: str, config: Mapping[str, Any]) -> Verdicts:
        ids = self._ids.get(resource_type)
        if not ids:
            return Verdicts()  # no control applies: no query at all
        if self._bundle is None:
            self.compile()
        value = {"type": resource_type, "config": config, "params": self._params[resource_type],
                 "unknown": unknown_keys(config)}
        self._interp.set_input(make_input(value))
        out = self._interp.query_bundle_entrypoint(
            self._bundle, f"{DISPATCH_PACKAGE}/{rule_name(resource_type)}"
        )
        self.evaluations += 1
        text = str(out)
        if not out.ok() or not text.startswith("{"):
            msg = f"evaluation of {resource_type} failed: {text.strip()[:300]}"
            raise NonRetryableError(msg)
        found = orjson.loads(text)["expressions"][0]
        # A rule that forgot its type guard must not leak into another type's results.
        failing = frozenset(found["fail"]) & ids
        return Verdicts(failing, frozenset(found["unknown"]) & ids - failing)

    def evaluate_batch(self, items: Sequence[tuple[str, Mapping[str, Any]]]
                       ) -> list[Verdicts | Exception]:
        """The bundle compiled once, then one query per resource (rego-cpp aborts on the
        `with input as` a single query over many inputs needs); errors stay per resource."""
        if self._bundle is None and any(self._ids.get(t) for t, _ in items):
            self.compile()
        return evaluate_each(self, items)
