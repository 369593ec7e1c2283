"""Evaluation results and how per-policy answers combine under block / warn / audit."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import orjson

__all__ = [
    "EvalResult",
    "PolicyAnswer",
    "PolicyRef",
    "combine",
    "failed",
    "input_hash",
    "parse_answer",
]

Enforcement = Literal["block", "warn", "audit"]


def input_hash(value: Mapping[str, Any]) -> str:
    """SHA-256 of the canonical JSON of an evaluation input (sorted keys): the cache and log key."""
    return hashlib.sha256(orjson.dumps(value, option=orjson.OPT_SORT_KEYS)).hexdigest()


@dataclass(frozen=True, slots=True)
class PolicyRef:
    """What the combiner needs to know about one policy."""

    policy_id: str
    """Registry id (the package name for policies loaded from files)."""
    version: int
    """Version evaluated."""
    enforcement: Enforcement
    """block, warn or audit."""
    has_allow: bool
    """The module defines `allow`, so a non-true value is a violation."""


@dataclass(frozen=True, slots=True)
class PolicyAnswer:
    """One policy's raw answer: its `allow`, `deny` and `approval_required` values."""

    allow: bool | None
    """Value of `allow` (None: not defined or undefined)."""
    deny: Sequence[str] = ()
    """Reasons from `deny`."""
    approval_required: Sequence[str] = ()
    """Reasons from `approval_required`."""
    error: str | None = None
    """The policy could not be compiled or evaluated."""


def _reasons(rule: str, value: Any) -> list[str]:
    if not isinstance(value, list):  # a set arrives as a JSON array; anything else is malformed
        msg = f"{rule} is {_json_kind(value)}, not a set of strings"
        raise ValueError(msg)
    bad = [v for v in value if not isinstance(v, str)]
    if bad:
        msg = f"{rule} has non-string members ({', '.join(_show(v) for v in bad[:3])})"
        raise ValueError(msg)
    return list(value)


def parse_answer(allow: Any, deny: Any = (), approval_required: Any = ()) -> PolicyAnswer:
    """A policy's raw rule values as an answer; a malformed one is an error answer.

    `allow` must be a boolean or undefined (None); `deny` and `approval_required` sets of strings.
    """
    try:
        if allow is not None and not isinstance(allow, bool):
            msg = f"allow is {_json_kind(allow)}, not a boolean"
            raise ValueError(msg)
        return PolicyAnswer(
            allow,
            _reasons("deny", list(deny) if isinstance(deny, tuple) else deny),
            _reasons("approval_required", list(approval_required)
                     if isinstance(approval_required, tuple) else approval_required),
        )
    except ValueError as exc:
        return PolicyAnswer(None, error=f"malformed result: {exc}")


def _json_kind(value: Any) -> str:
    names = {bool: "a boolean", int: "a number", float: "a number", str: "a string",
             list: "a list", dict: "an object", type(None): "null"}
    return f"{names.get(type(value), type(value).__name__)} ({_show(value)})"


def _show(value: Any) -> str:
    return orjson.dumps(value).decode()[:60] if _jsonable(value) else repr(value)[:60]


def _jsonable(value: Any) -> bool:
    try:
        orjson.dumps(value)
    except TypeError:
        return False
    return True


@dataclass(frozen=True, slots=True)
class EvalResult:
    """The combined verdict of the policies in scope for one input."""

    allowed: bool
    """False when a block policy denies or errors."""
    needs_approval: bool = False
    """A block policy asks for human approval (only meaningful when allowed)."""
    reasons: list[str] = field(default_factory=list)
    """Block violations, approval reasons and warnings, for people."""
    violations: list[str] = field(default_factory=list)
    """Block-mode violations (why it was denied)."""
    warnings: list[str] = field(default_factory=list)
    """Warn-mode violations (allowed, reasons attached)."""
    audit: list[str] = field(default_factory=list)
    """Audit-mode violations (recorded only)."""
    approvals: list[str] = field(default_factory=list)
    """Why approval is needed."""
    policy_versions: dict[str, int] = field(default_factory=dict)
    """Policy id → version of every policy evaluated."""
    error: str | None = None
    """Engine error (compile, runtime, undefined); the result then fails closed in block mode."""
    latency_ms: float = 0.0
    """Evaluation time in milliseconds."""
    input_hash: str = ""
    """SHA-256 of the canonical input."""
    cached: bool = False
    """Served from the result cache."""

    def with_timing(self, latency_ms: float, *, cached: bool = False) -> EvalResult:
        """A copy with the latency of this call (cached results keep their verdict)."""
        # every field by name: several times cheaper than dataclasses.replace on a hot path
        return EvalResult(
            allowed=self.allowed, needs_approval=self.needs_approval, reasons=self.reasons,
            violations=self.violations, warnings=self.warnings, audit=self.audit,
            approvals=self.approvals, policy_versions=self.policy_versions, error=self.error,
            latency_ms=latency_ms, input_hash=self.input_hash, cached=cached)


def _violations(ref: PolicyRef, ans: PolicyAnswer) -> list[str]:
    found = [f"{ref.policy_id}: {msg}" for msg in sorted(ans.deny)]
    if ref.has_allow and ans.allow is not True and not found:
        found.append(f"{ref.policy_id}: not allowed")
    return found


def combine(
    refs: Sequence[PolicyRef], answers: Mapping[str, PolicyAnswer], digest: str = ""
) -> EvalResult:
    """Block: deny wins; warn: allowed with reasons; audit: recorded only. Errors fail closed."""
    out = _Combined()
    versions: dict[str, int] = {}
    for ref in refs:
        versions[ref.policy_id] = ref.version
        ans = answers.get(ref.policy_id) or PolicyAnswer(None, error="no result (undefined)")
        if ans.error is not None:
            out.error(ref, ans.error)
            continue
        if not ans.deny and not ans.approval_required and (ans.allow or not ref.has_allow):
            continue  # nothing to say: most answers of a large set
        found = _violations(ref, ans)
        approvals = [f"{ref.policy_id}: {msg}" for msg in sorted(ans.approval_required)]
        if ref.enforcement == "block":
            out.violations += found
            out.approvals += approvals
        elif ref.enforcement == "warn":
            out.warnings += found + approvals
        else:
            out.audit += found + approvals
    allowed = not out.violations and not out.errors
    # built once with every field (dataclasses.replace on each result cost ~15 % of a batch)
    return EvalResult(
        allowed=allowed,
        needs_approval=allowed and bool(out.approvals),
        reasons=out.violations + out.errors + out.approvals + out.warnings,
        violations=out.violations,
        warnings=out.warnings,
        audit=out.audit,
        approvals=out.approvals,
        policy_versions=versions,
        error="; ".join(out.errors) or None,
        input_hash=digest,
    )


class _Combined:
    """The reasons gathered while combining one input's answers."""

    __slots__ = ("approvals", "audit", "errors", "violations", "warnings")

    def __init__(self) -> None:
        self.violations: list[str] = []
        self.approvals: list[str] = []
        self.warnings: list[str] = []
        self.audit: list[str] = []
        self.errors: list[str] = []

    def error(self, ref: PolicyRef, error: str) -> None:
        msg = f"{ref.policy_id}: policy error ({error})"
        if ref.enforcement == "block":
            self.errors.append(msg + ", failing closed")
        elif ref.enforcement == "warn":
            self.warnings.append(msg)
        else:
            self.audit.append(msg)


def failed(refs: Sequence[PolicyRef], error: str, digest: str = "") -> EvalResult:
    """The result when the whole evaluation failed: every policy errored with the same reason."""
    return combine(refs, {r.policy_id: PolicyAnswer(None, error=error) for r in refs}, digest)
