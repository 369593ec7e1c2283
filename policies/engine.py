"""The policy engine: regopy bundles compiled once per policy set and scope, reused per input."""

from __future__ import annotations

import re
import time
from collections import OrderedDict
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import orjson
from pydantic import BaseModel, Field

from policies._rego_input import make_input, new_interpreter
from policies.result import (
    EvalResult,
    PolicyAnswer,
    PolicyRef,
    combine,
    failed,
    input_hash,
    parse_answer,
)
from policies.source import package_of, rule_shape
from schemas import PolicyVersion

__all__ = ["EngineConfig", "PolicyEngine", "PolicySource", "RegoEngine", "StaticSource"]

_WRAPPER = "novacron_engine"
_ENTRY = f"{_WRAPPER}/result"
ScopeKey = tuple[frozenset[str] | None, frozenset[str] | None]


class PolicyEngine(Protocol):
    """What the gate and the control API need from an engine (regopy in-process or OPA REST)."""

    def evaluate(
        self,
        value: Mapping[str, Any],
        *,
        types: Collection[str] | None = None,
        policy_ids: Collection[str] | None = None,
    ) -> EvalResult:
        """Evaluate the enabled policies in scope (all when both filters are None)."""
        ...


class PolicySource(Protocol):
    """Where the engine reads policies from; a new revision invalidates bundles and cache."""

    @property
    def revision(self) -> int:
        """Increases on every change of the policy set."""
        ...

    def active(self) -> list[PolicyVersion]:
        """The current version of every enabled policy."""
        ...


class StaticSource:
    """A fixed policy list (files, tests, the CLI); `replace()` bumps the revision."""

    def __init__(self, policies: Iterable[PolicyVersion] = ()) -> None:
        self._policies = list(policies)
        self.revision = 1

    def active(self) -> list[PolicyVersion]:
        return [p for p in self._policies if p.enabled]

    def replace(self, policies: Iterable[PolicyVersion]) -> None:
        self._policies = list(policies)
        self.revision += 1


class EngineConfig(BaseModel):
    """Settings of the in-process regopy engine."""

    cache_size: int = Field(default=0, ge=0)
    """Result-cache entries keyed by the input's canonical hash (0 disables the cache)."""


@dataclass(slots=True)
class _Compiled:
    refs: list[PolicyRef]
    answers_fixed: dict[str, PolicyAnswer]  # policies that failed to compile alone
    included: list[str]  # policy ids in the bundle, in result order
    input_keys: frozenset[str] | None = None  # top-level input keys the modules read (None: all)
    interpreter: Any = None
    bundle: Any = None
    error: str | None = None
    sources: dict[str, PolicyVersion] = field(default_factory=dict)  # included id → policy
    singles: dict[str, tuple[Any, Any]] = field(default_factory=dict)  # id → (interp, bundle)


RUNTIME_ERROR = (
    "runtime error: a built-in failed (type error, conversion such as to_number, division "
    "by zero, conflicting values, …)"
)
NO_RULES = "defines none of the rules allow, deny, approval_required"


def _in_scope(p: PolicyVersion, scope: ScopeKey) -> bool:
    types, ids = scope
    return (types is None or p.policy_type in types) and (ids is None or p.policy_id in ids)


def _ref(p: PolicyVersion) -> PolicyRef:
    return PolicyRef(p.policy_id, p.version, p.enforcement, rule_shape(p.rego).allow)


def _wrapper(policies: Sequence[PolicyVersion]) -> str:
    # One rule gathers [allow, deny, approval_required] of every policy so one query answers all;
    # only rules a module defines are referenced, and a possibly-undefined allow gets a default.
    lines = [f"package {_WRAPPER}", "", "import rego.v1", ""]
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
    lines.append("result := [" + ", ".join(rows) + "]")
    return "\n".join(lines) + "\n"


def _interpreter_for(policies: Sequence[PolicyVersion]) -> tuple[Any, Any]:
    interp = new_interpreter(strict=True)
    for p in policies:
        interp.add_module(f"{p.policy_id}.rego", p.rego)
    interp.add_module(f"{_WRAPPER}.rego", _wrapper(policies))
    return interp, interp.build(None, [_ENTRY])


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


class RegoEngine:
    """Evaluates inputs against the enabled policies with regopy; compiles once, reuses bundles."""

    def __init__(self, source: PolicySource, config: EngineConfig | None = None) -> None:
        self.source = source
        self.config = config or EngineConfig()
        self._revision = -1
        self._compiled: dict[ScopeKey, _Compiled] = {}
        self._cache: OrderedDict[tuple[ScopeKey, str], EvalResult] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def invalidate(self) -> None:
        """Drop compiled bundles and cached results (also done on every source revision)."""
        self._compiled.clear()
        self._cache.clear()
        self._revision = self.source.revision

    def evaluate(
        self,
        value: Mapping[str, Any],
        *,
        types: Collection[str] | None = None,
        policy_ids: Collection[str] | None = None,
    ) -> EvalResult:
        start = time.perf_counter()
        if self.source.revision != self._revision:
            self.invalidate()
        scope: ScopeKey = (
            frozenset(types) if types is not None else None,
            frozenset(policy_ids) if policy_ids is not None else None,
        )
        digest = input_hash(value)
        if self.config.cache_size:
            hit = self._cache.get((scope, digest))
            if hit is not None:
                self.hits += 1
                self._cache.move_to_end((scope, digest))
                return hit.with_timing((time.perf_counter() - start) * 1000, cached=True)
            self.misses += 1
        result = self._evaluate(self._compiled_for(scope), value, digest)
        result = result.with_timing((time.perf_counter() - start) * 1000)
        if self.config.cache_size:
            self._remember((scope, digest), result)
        return result

    def _remember(self, key: tuple[ScopeKey, str], result: EvalResult) -> None:
        self._cache[key] = result
        if len(self._cache) > self.config.cache_size:
            self._cache.popitem(last=False)

    def _compiled_for(self, scope: ScopeKey) -> _Compiled:
        compiled = self._compiled.get(scope)
        if compiled is None:
            policies = [p for p in self.source.active() if _in_scope(p, scope)]
            compiled = self._compiled[scope] = self._compile(policies)
        return compiled

    def _compile(self, policies: list[PolicyVersion]) -> _Compiled:
        refs = [_ref(p) for p in policies]
        # Compile each module alone first so one broken policy fails only itself (and the
        # decision, if it is a block policy) instead of hiding every other policy's answer.
        fixed: dict[str, PolicyAnswer] = {}
        good: list[PolicyVersion] = []
        for p in policies:
            errors = _safe_compile_errors(p.rego)
            shape = rule_shape(p.rego)
            if errors:
                fixed[p.policy_id] = PolicyAnswer(
                    None, error="compile error: " + " | ".join(errors[:3])
                )
            elif not (shape.allow or shape.deny or shape.approval_required):
                # a module that decides nothing must not count as a yes
                fixed[p.policy_id] = PolicyAnswer(None, error=NO_RULES)
            else:
                good.append(p)
        compiled = _Compiled(refs, fixed, [p.policy_id for p in good], _input_keys(good),
                             sources={p.policy_id: p for p in good})
        if not good:
            return compiled
        try:
            compiled.interpreter, compiled.bundle = _interpreter_for(good)
        except Exception as exc:
            compiled.error = "compile error: " + str(exc).strip().splitlines()[0]
        return compiled

    def _evaluate(self, compiled: _Compiled, value: Mapping[str, Any], digest: str) -> EvalResult:
        if not compiled.refs:
            return EvalResult(
                allowed=False,
                reasons=["no enabled policy in scope, failing closed"],
                error="no enabled policy in scope",
                input_hash=digest,
            )
        if compiled.error is not None:
            return failed(compiled.refs, compiled.error, digest)
        answers = dict(compiled.answers_fixed)
        if compiled.included:
            try:
                answers.update(self._query(compiled, value))
            except _QueryError:
                # one policy failed and took the joint query with it: ask each policy alone so
                # the verdict names the failing one and the others still answer
                answers.update(self._one_by_one(compiled, value))
            except Exception as exc:  # the input itself cannot be passed to Rego
                return failed(compiled.refs, str(exc).strip().splitlines()[0], digest)
        return combine(compiled.refs, answers, digest)

    def _query(self, compiled: _Compiled, value: Mapping[str, Any]) -> dict[str, PolicyAnswer]:
        keys = compiled.input_keys
        # Building the native input costs about as much as the query, so pass only what is read.
        projected = value if keys is None else {k: v for k, v in value.items() if k in keys}
        rows = _run(compiled.interpreter, compiled.bundle, make_input(projected))
        if not isinstance(rows, list) or len(rows) != len(compiled.included):
            raise _QueryError("malformed joint result")
        return {pid: _answer(row) for pid, row in zip(compiled.included, rows, strict=True)}

    def _one_by_one(self, compiled: _Compiled, value: Mapping[str, Any]
                    ) -> dict[str, PolicyAnswer]:
        native = make_input(dict(value))
        out: dict[str, PolicyAnswer] = {}
        for pid in compiled.included:
            if pid not in compiled.singles:
                compiled.singles[pid] = _interpreter_for([compiled.sources[pid]])
            interp, bundle = compiled.singles[pid]
            try:
                (row,) = _run(interp, bundle, native)
                out[pid] = _answer(row)
            except (_QueryError, ValueError) as exc:
                out[pid] = PolicyAnswer(None, error=str(exc))
        return out


class _QueryError(Exception):
    """The query failed inside Rego (a built-in error) or returned something unreadable."""


def _run(interp: Any, bundle: Any, native_input: Any) -> Any:
    interp.set_input(native_input)
    try:
        out = interp.query_bundle_entrypoint(bundle, _ENTRY)
    except Exception as exc:  # regopy can report an error as an "ok" output that is not JSON
        raise _QueryError(f"evaluation error ({type(exc).__name__})") from None
    text = str(out)  # never out.expressions() on a failed output: regopy aborts the process
    if not out.ok():
        raise _QueryError(RUNTIME_ERROR)
    if not text.startswith("{"):
        raise _QueryError(f"undefined result ({text.strip()[:80]})")
    try:
        return orjson.loads(text)["expressions"][0]
    except (orjson.JSONDecodeError, KeyError, IndexError, TypeError) as exc:
        raise _QueryError(f"unreadable result ({type(exc).__name__})") from None


def _answer(row: Any) -> PolicyAnswer:
    if not isinstance(row, list) or len(row) != 3:
        return PolicyAnswer(None, error="malformed result")
    return parse_answer(*row)


def _input_keys(policies: Sequence[PolicyVersion]) -> frozenset[str] | None:
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
