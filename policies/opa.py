"""A PolicyEngine that asks an external OPA server over its REST API (httpx)."""

from __future__ import annotations

import time
from collections.abc import Collection, Mapping, Sequence
from typing import Any

import httpx

from policies.core import OpaConfig, PolicySource
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

__all__ = ["OpaConfig", "OpaEngine"]


class OpaEngine:
    """Same contract as RegoEngine: one `POST /v1/data/{package}` per policy in scope.

    OPA answers `{"result": {...package document...}}`, or `{}` when the document is undefined,
    which counts as an error (fail closed in block mode).
    """

    def __init__(
        self,
        source: PolicySource,
        config: OpaConfig | None = None,
        client: httpx.Client | None = None,
    ) -> None:
        self.source = source
        self.config = config or OpaConfig()
        headers = {"Authorization": f"Bearer {self.config.token}"} if self.config.token else {}
        self.client = client or httpx.Client(
            base_url=self.config.url, timeout=self.config.timeout_seconds, headers=headers
        )
        self._pushed = -1

    def close(self) -> None:
        """Close the HTTP client."""
        self.client.close()

    def sync(self) -> None:
        """Push the enabled policies to OPA (PUT /v1/policies/{id} with the Rego source)."""
        for p in self.source.active():
            resp = self.client.put(
                f"/v1/policies/{p.policy_id}",
                content=p.rego.encode(),
                headers={"Content-Type": "text/plain"},
            )
            resp.raise_for_status()
        self._pushed = self.source.revision

    def evaluate(
        self,
        value: Mapping[str, Any],
        *,
        types: Collection[str] | None = None,
        policy_ids: Collection[str] | None = None,
    ) -> EvalResult:
        start = time.perf_counter()
        digest = input_hash(value)
        policies = [
            p
            for p in self.source.active()
            if (types is None or p.policy_type in types)
            and (policy_ids is None or p.policy_id in policy_ids)
        ]
        refs = [
            PolicyRef(p.policy_id, p.version, p.enforcement, rule_shape(p.rego).allow)
            for p in policies
        ]
        if not refs:
            return EvalResult(
                allowed=False,
                error="no enabled policy in scope",
                reasons=["no enabled policy in scope, failing closed"],
                input_hash=digest,
            )
        try:
            if self.config.push_policies and self._pushed != self.source.revision:
                self.sync()
            answers = {p.policy_id: self._ask(p, value) for p in policies}
        except httpx.HTTPError as exc:
            result = failed(refs, f"OPA unreachable or failed: {exc}", digest)
        else:
            result = combine(refs, answers, digest)
        return result.with_timing((time.perf_counter() - start) * 1000)

    def evaluate_batch(
        self,
        values: Sequence[Mapping[str, Any]],
        *,
        types: Collection[str] | None = None,
        policy_ids: Collection[str] | None = None,
    ) -> list[EvalResult]:
        """One REST evaluation per input (OPA's data API takes one input per request)."""
        return [self.evaluate(v, types=types, policy_ids=policy_ids) for v in values]

    def _ask(self, policy: PolicyVersion, value: Mapping[str, Any]) -> PolicyAnswer:
        shape = rule_shape(policy.rego)
        if not (shape.allow or shape.deny or shape.approval_required):
            return PolicyAnswer(None, error="defines none of the rules allow, deny, "
                                            "approval_required")
        path = package_of(policy.rego).replace(".", "/")
        # strict: a failing built-in is an error (HTTP 500), not an undefined `deny`
        resp = self.client.post(
            f"/v1/data/{path}", params={"strict-builtin-errors": "true"}, json={"input": value}
        )
        if resp.status_code != 200:
            return PolicyAnswer(None, error=f"OPA returned {resp.status_code}: {resp.text[:200]}")
        doc = resp.json()
        if "result" not in doc or not isinstance(doc["result"], dict):
            return PolicyAnswer(None, error="undefined result from OPA")
        result = doc["result"]
        return parse_answer(
            result.get("allow"), result.get("deny", []), result.get("approval_required", [])
        )
