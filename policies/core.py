"""What the in-process engines share: scopes, the result cache, batches, the fail-closed flow."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

from pydantic import BaseModel, Field

from policies.result import EvalResult, PolicyAnswer, PolicyRef, combine, failed, input_hash
from policies.source import rule_shape
from schemas import PolicyVersion

__all__ = [
    "NO_RULES",
    "RUNTIME_ERROR",
    "BatchEngine",
    "Compiled",
    "EngineConfig",
    "OpaConfig",
    "PolicySource",
    "QueryError",
    "ScopeKey",
    "StaticSource",
    "WasmConfig",
    "policy_ref",
]

ScopeKey = tuple[frozenset[str] | None, frozenset[str] | None]
Answers = dict[str, PolicyAnswer]
RUNTIME_ERROR = (
    "runtime error: a built-in failed (type error, conversion such as to_number, division "
    "by zero, conflicting values, …)"
)
NO_RULES = "defines none of the rules allow, deny, approval_required"


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


class OpaConfig(BaseModel):
    """Where the OPA server is and whether we push our policies to it."""

    url: str = "http://127.0.0.1:8181"
    """Base URL of the OPA server."""
    timeout_seconds: float = Field(default=2.0, gt=0)
    """Per-request timeout; a timeout fails closed like any engine error."""
    push_policies: bool = True
    """PUT each enabled policy to `/v1/policies/{id}` when the policy set changes."""
    token: str | None = None
    """Bearer token for OPA's authentication, if enabled."""


class WasmConfig(BaseModel):
    """How the OPA WebAssembly backend builds its modules."""

    opa_binary: Path | None = None
    """The `opa` executable that compiles Rego to WebAssembly (None: $NOVACRON_OPA, then
    ~/.cache/novacron/bin/opa, then `opa` on PATH)."""
    cache_dir: Path | None = None
    """Where built modules are kept by content hash (None: ~/.cache/novacron/wasm)."""
    build_timeout_seconds: float = Field(default=120.0, gt=0)
    """Longest one `opa build` may take; a timeout is a compile error (fail closed)."""


class EngineConfig(BaseModel):
    """Settings of the policy engine (`NOVACRON_POLICY_ENGINE__*`)."""

    backend: Literal["regopy", "wasm", "opa-server"] = "wasm"
    """wasm (OPA compiled to WebAssembly, run by wasmtime in process; the fastest, needs the
    `opa` binary to build modules and falls back to regopy without one), regopy (rego-cpp in
    process) or opa-server (REST calls to an OPA server, `opa`)."""
    cache_size: int = Field(default=0, ge=0)
    """Result-cache entries keyed by the input's canonical hash (0 disables the cache)."""
    wasm: WasmConfig = Field(default_factory=WasmConfig)
    """The wasm backend's build settings."""
    opa: OpaConfig = Field(default_factory=OpaConfig)
    """The opa-server backend's connection."""


def policy_ref(p: PolicyVersion) -> PolicyRef:
    """The combiner's view of a policy."""
    return PolicyRef(p.policy_id, p.version, p.enforcement, rule_shape(p.rego).allow)


def decides_nothing(p: PolicyVersion) -> bool:
    """A module without allow, deny and approval_required must not count as a yes."""
    shape = rule_shape(p.rego)
    return not (shape.allow or shape.deny or shape.approval_required)


@dataclass(slots=True)
class Compiled:
    """One policy set's compiled form (the backend keeps its native objects in `native`)."""

    refs: list[PolicyRef]
    answers_fixed: Answers  # policies that failed to compile alone, or decide nothing
    included: list[str]  # policy ids in the joint module, in result order
    sources: dict[str, PolicyVersion] = field(default_factory=dict)  # included id → policy
    error: str | None = None  # the joint module failed to build
    native: Any = None


class QueryError(Exception):
    """The query failed inside Rego (a built-in error) or returned something unreadable."""


class BatchEngine:
    """Scope, cache and fail-closed combination around a backend's batched query.

    Subclasses build a `Compiled` per policy set (`_build`) and answer a list of inputs
    (`_answer_all`); an input whose answers cannot be had gets an exception in its slot.
    """

    def __init__(self, source: PolicySource, config: EngineConfig | None = None) -> None:
        self.source = source
        self.config = config or EngineConfig()
        self._revision = -1
        self._compiled: dict[ScopeKey, Compiled] = {}
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
        """Evaluate the enabled policies in scope (all when both filters are None)."""
        return self.evaluate_batch([value], types=types, policy_ids=policy_ids)[0]

    def evaluate_batch(
        self,
        values: Sequence[Mapping[str, Any]],
        *,
        types: Collection[str] | None = None,
        policy_ids: Collection[str] | None = None,
    ) -> list[EvalResult]:
        """One result per input, in order, each as `evaluate` would give it alone.

        Latency: a cached result reports its own lookup; the others share the batch's time
        equally (the decision log's `latency_ms` is the amortised cost per input).
        """
        start = time.perf_counter()
        if self.source.revision != self._revision:
            self.invalidate()
        scope: ScopeKey = (
            frozenset(types) if types is not None else None,
            frozenset(policy_ids) if policy_ids is not None else None,
        )
        digests = [_digest(v) for v in values]
        out: list[EvalResult | None] = [self._cached(scope, d) if d else None for d in digests]
        for i in [i for i, d in enumerate(digests) if not d]:  # not JSON: it fails alone
            refs, why = self._compiled_for(scope).refs, _not_json(values[i])
            out[i] = failed(refs, why) if refs else EvalResult(
                allowed=False, error=why, reasons=[f"{why}, failing closed"])
        todo = [i for i, r in enumerate(out) if r is None]
        if todo:
            fresh = self._evaluate_all(self._compiled_for(scope), [values[i] for i in todo],
                                       [digests[i] for i in todo])
            share = (time.perf_counter() - start) * 1000 / len(todo)
            for i, result in zip(todo, fresh, strict=True):
                # fresh results are this call's own objects: stamp them instead of copying
                object.__setattr__(result, "latency_ms", share)
                out[i] = result
                if self.config.cache_size:
                    self._remember((scope, digests[i]), result)
        return [r for r in out if r is not None]

    def _cached(self, scope: ScopeKey, digest: str) -> EvalResult | None:
        if not self.config.cache_size:
            return None
        start = time.perf_counter()
        hit = self._cache.get((scope, digest))
        if hit is None:
            self.misses += 1
            return None
        self.hits += 1
        self._cache.move_to_end((scope, digest))
        return hit.with_timing((time.perf_counter() - start) * 1000, cached=True)

    def _remember(self, key: tuple[ScopeKey, str], result: EvalResult) -> None:
        self._cache[key] = result
        if len(self._cache) > self.config.cache_size:
            self._cache.popitem(last=False)

    def _compiled_for(self, scope: ScopeKey) -> Compiled:
        compiled = self._compiled.get(scope)
        if compiled is None:
            types, ids = scope
            policies = [p for p in self.source.active()
                        if (types is None or p.policy_type in types)
                        and (ids is None or p.policy_id in ids)]
            compiled = self._compiled[scope] = self._build(policies)
        return compiled

    def _evaluate_all(self, compiled: Compiled, values: Sequence[Mapping[str, Any]],
                      digests: Sequence[str]) -> list[EvalResult]:
        if not compiled.refs:
            return [EvalResult(allowed=False, error="no enabled policy in scope",
                               reasons=["no enabled policy in scope, failing closed"],
                               input_hash=d) for d in digests]
        if compiled.error is not None:
            return [failed(compiled.refs, compiled.error, d) for d in digests]
        if not compiled.included:
            return [combine(compiled.refs, compiled.answers_fixed, d) for d in digests]
        results = []
        for answers, digest in zip(self._answer_all(compiled, values), digests, strict=True):
            if isinstance(answers, Exception):  # the input itself cannot be passed to Rego
                results.append(failed(compiled.refs, str(answers).strip().splitlines()[0], digest))
            else:
                results.append(combine(compiled.refs, {**compiled.answers_fixed, **answers},
                                       digest))
        return results

    # --- what a backend provides -----------------------------------------------------------------
    def _build(self, policies: list[PolicyVersion]) -> Compiled:
        raise NotImplementedError

    def _answer_all(self, compiled: Compiled, values: Sequence[Mapping[str, Any]]
                    ) -> list[Answers | Exception]:
        raise NotImplementedError


def _digest(value: Mapping[str, Any]) -> str:
    try:
        return input_hash(value)
    except TypeError:
        return ""


def _not_json(value: Mapping[str, Any]) -> str:
    try:
        input_hash(value)
    except TypeError as exc:
        return f"cannot pass the input to Rego (JSON values only): {exc}"
    return "cannot pass the input to Rego"


def split_policies(policies: Sequence[PolicyVersion], compile_errors: Any
                   ) -> tuple[Answers, list[PolicyVersion]]:
    """Compile each module alone first so one broken policy fails only itself (and the
    decision, if it is a block policy) instead of hiding every other policy's answer."""
    fixed: Answers = {}
    good: list[PolicyVersion] = []
    for p in policies:
        errors = compile_errors(p)
        if errors:
            fixed[p.policy_id] = PolicyAnswer(None,
                                              error="compile error: " + " | ".join(errors[:3]))
        elif decides_nothing(p):
            fixed[p.policy_id] = PolicyAnswer(None, error=NO_RULES)
        else:
            good.append(p)
    return fixed, good
