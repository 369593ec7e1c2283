"""The regopy engine: bundles compiled once per policy set and scope, one query per input."""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping, Sequence
from typing import Any, Protocol

import orjson

from policies._rego_input import make_input, new_interpreter
from policies.core import (
    NO_RULES,
    RUNTIME_ERROR,
    Answers,
    BatchEngine,
    Compiled,
    EngineConfig,
    PolicySource,
    QueryError,
    StaticSource,
    policy_ref,
    split_policies,
)
from policies.result import EvalResult, PolicyAnswer, parse_answer
from policies.source import package_of, rule_shape
from schemas import PolicyVersion

__all__ = [
    "NO_RULES",
    "RUNTIME_ERROR",
    "EngineConfig",
    "PolicyEngine",
    "PolicySource",
    "RegoEngine",
    "StaticSource",
    "compile_errors",
    "wrapper_module",
]

WRAPPER = "novacron_engine"
ENTRY = f"{WRAPPER}/result"


class PolicyEngine(Protocol):
    """What the gate and the control API need from an engine (regopy, wasm or OPA REST)."""

    def evaluate(
        self,
        value: Mapping[str, Any],
        *,
        types: Collection[str] | None = None,
        policy_ids: Collection[str] | None = None,
    ) -> EvalResult:
        """Evaluate the enabled policies in scope (all when both filters are None)."""
        ...

    def evaluate_batch(
        self,
        values: Sequence[Mapping[str, Any]],
        *,
        types: Collection[str] | None = None,
        policy_ids: Collection[str] | None = None,
    ) -> list[EvalResult]:
        """One result per input, in order, each the one `evaluate` gives it alone."""
        ...


def wrapper_module(policies: Sequence[PolicyVersion], package: str = WRAPPER) -> str:
    """One rule `result` gathers [allow, deny, approval_required] of every policy, so one query
    answers all; only rules a module defines are referenced, and a possibly-undefined allow gets a
    default (null). `p<i>` is policy i's row alone (the wasm backend's per-policy entrypoints)."""
    lines = [f"package {package}", "", "import rego.v1", ""]
    rows = []
    for i, p in enumerate(policies):
        pkg, shape = package_of(p.rego), rule_shape(p.rego)
        allow = f"data.{pkg}.allow" if shape.default_allow else "null"
        if shape.allow and not shape.default_allow:
            allow = f"p{i}_allow"
            lines += [f"default p{i}_allow := null", f"p{i}_allow := data.{pkg}.allow"]
        deny = f"data.{pkg}.deny" if shape.deny else "[]"
        appr = f"data.{pkg}.approval_required" if shape.approval_required else "[]"
        rows.append(f"[{allow}, {deny}, {appr}]")
        lines.append(f"p{i} := {rows[-1]}")
    lines.append("result := [" + ", ".join(f"p{i}" for i in range(len(rows))) + "]")
    return "\n".join(lines) + "\n"


def _interpreter_for(policies: Sequence[PolicyVersion]) -> tuple[Any, Any]:
    interp = new_interpreter(strict=True)
    for p in policies:
        interp.add_module(f"{p.policy_id}.rego", p.rego)
    interp.add_module(f"{WRAPPER}.rego", wrapper_module(policies))
    return interp, interp.build(None, [ENTRY])


def compile_errors(rego: str, others: Sequence[str] = ()) -> list[str]:
    """Compiler errors for a module (with the modules it may depend on); empty when it compiles."""
    interp = new_interpreter()
    try:
        for i, src in enumerate(others):
            interp.add_module(f"dep{i}.rego", src)
        interp.add_module("policy.rego", rego)
        package = package_of(rego).replace(".", "/")
        interp.build(None, [package])
    except Exception as exc:
        return [line for line in str(exc).splitlines() if line.strip()][:20] or [type(exc).__name__]
    return []


class _Native:
    """regopy's side of a compiled set: the joint bundle, lazily one bundle per policy."""

    def __init__(self, interpreter: Any, bundle: Any, input_keys: frozenset[str] | None) -> None:
        self.interpreter, self.bundle, self.input_keys = interpreter, bundle, input_keys
        self.singles: dict[str, tuple[Any, Any]] = {}


class RegoEngine(BatchEngine):
    """Evaluates inputs against the enabled policies with regopy; compiles once, reuses bundles.

    A batch is one bundle query per input: rego-cpp 1.5.2 aborts the process on `with input as`
    a variable, the only way to ask one query about many inputs without rewriting the policies.
    """

    def _build(self, policies: list[PolicyVersion]) -> Compiled:
        fixed, good = split_policies(policies, lambda p: _safe_compile_errors(p.rego))
        compiled = Compiled([policy_ref(p) for p in policies], fixed,
                            [p.policy_id for p in good], {p.policy_id: p for p in good})
        if good:
            try:
                compiled.native = _Native(*_interpreter_for(good), input_keys(good))
            except Exception as exc:
                compiled.error = "compile error: " + str(exc).strip().splitlines()[0]
        return compiled

    def _answer_all(self, compiled: Compiled, values: Sequence[Mapping[str, Any]]
                    ) -> list[Answers | Exception]:
        out: list[Answers | Exception] = []
        for value in values:
            try:
                out.append(self._query(compiled, value))
            except QueryError:
                # one policy failed and took the joint query with it: ask each policy alone so
                # the verdict names the failing one and the others still answer
                out.append(self._one_by_one(compiled, value))
            except Exception as exc:  # the input itself cannot be passed to Rego
                out.append(exc)
        return out

    def _query(self, compiled: Compiled, value: Mapping[str, Any]) -> Answers:
        native: _Native = compiled.native
        keys = native.input_keys
        # Building the native input costs about as much as the query, so pass only what is read.
        projected = value if keys is None else {k: v for k, v in value.items() if k in keys}
        rows = _run(native.interpreter, native.bundle, make_input(projected))
        if not isinstance(rows, list) or len(rows) != len(compiled.included):
            raise QueryError("malformed joint result")
        return {pid: answer_of(row) for pid, row in zip(compiled.included, rows, strict=True)}

    def _one_by_one(self, compiled: Compiled, value: Mapping[str, Any]) -> Answers:
        native: _Native = compiled.native
        built = make_input(dict(value))
        out: Answers = {}
        for pid in compiled.included:
            if pid not in native.singles:
                native.singles[pid] = _interpreter_for([compiled.sources[pid]])
            interp, bundle = native.singles[pid]
            try:
                (row,) = _run(interp, bundle, built)
                out[pid] = answer_of(row)
            except (QueryError, ValueError) as exc:
                out[pid] = PolicyAnswer(None, error=str(exc))
        return out


def _run(interp: Any, bundle: Any, native_input: Any) -> Any:
    interp.set_input(native_input)
    try:
        out = interp.query_bundle_entrypoint(bundle, ENTRY)
    except Exception as exc:  # regopy can report an error as an "ok" output that is not JSON
        raise QueryError(f"evaluation error ({type(exc).__name__})") from None
    text = str(out)  # never out.expressions() on a failed output: regopy aborts the process
    if not out.ok():
        raise QueryError(RUNTIME_ERROR)
    if not text.startswith("{"):
        raise QueryError(f"undefined result ({text.strip()[:80]})")
    try:
        return orjson.loads(text)["expressions"][0]
    except (orjson.JSONDecodeError, KeyError, IndexError, TypeError) as exc:
        raise QueryError(f"unreadable result ({type(exc).__name__})") from None


_QUIET = {None: PolicyAnswer(None), True: PolicyAnswer(True), False: PolicyAnswer(False)}
"""The answers without reasons, shared (frozen): most rows of a batch are one of these."""


def answer_of(row: Any) -> PolicyAnswer:
    """One policy's [allow, deny, approval_required] row as an answer (malformed: an error)."""
    if not isinstance(row, list) or len(row) != 3:
        return PolicyAnswer(None, error="malformed result")
    allow, deny, approvals = row
    if (allow is None or type(allow) is bool) and deny == [] and approvals == []:
        return _QUIET[allow]
    return parse_answer(allow, deny, approvals)


def input_keys(policies: Sequence[PolicyVersion]) -> frozenset[str] | None:
    """Top-level input keys read as `input.<key>`; None when any module reads `input` otherwise."""
    keys: set[str] = set()
    for p in policies:
        for match in re.finditer(r"\binput\b(\.(\w+))?", p.rego):
            if match.group(2) is None:
                return None
            keys.add(match.group(2))
    return frozenset(keys)


def _safe_compile_errors(rego: str) -> list[str]:
    try:
        return compile_errors(rego)
    except Exception as exc:  # package_of raises RejectedError for a module without a package
        return [str(exc)]
