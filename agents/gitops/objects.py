"""Objects a config repository manages, their names and content digests, and the live ones.

One digest function per kind is used for what git declares and for what is live (folded from the
topics), so "changed in git", "changed out of band" and "unchanged" are one comparison.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

import orjson

from agents.drift.rules import IgnoreRule
from runbooks.model import Runbook
from schemas import DesiredState, PolicyVersion
from schemas.attestations import ComplianceAttestation

if TYPE_CHECKING:
    from agents.shared import SharedState

__all__ = [
    "KINDS",
    "GitObject",
    "Kind",
    "baseline_digest",
    "exception_digest",
    "exception_name",
    "ignore_digest",
    "live_digests",
    "out_of_band",
    "policy_digest",
    "runbook_digest",
]

Kind = Literal["policy", "runbook", "baseline", "ignore", "exception"]
KINDS: tuple[Kind, ...] = ("policy", "runbook", "baseline", "ignore", "exception")
"""Object kinds, in the order they are applied (folders: policies/, runbooks/, baselines/, ...)."""


def _digest(value: Any) -> str:
    return hashlib.sha256(orjson.dumps(value, option=orjson.OPT_SORT_KEYS)).hexdigest()


def policy_digest(rego: str, enforcement: str, policy_type: str, name: str) -> str:
    """What makes two enabled policy versions the same."""
    return _digest(["policy", rego, enforcement, policy_type, name])


def runbook_digest(book: Runbook) -> str:
    """The runbook's own content hash (what the gate approves)."""
    return book.content_hash


def baseline_digest(resource_type: str, config: dict[str, Any]) -> str:
    """A baseline's declared type and config."""
    return _digest(["baseline", resource_type, config])


def ignore_digest(rule: IgnoreRule) -> str:
    """An ignore rule's content (who added it does not count)."""
    return _digest(["ignore", rule.model_dump(mode="json", exclude={"created_by"})])


def _when(value: datetime) -> str:
    return value.isoformat(timespec="seconds")


def exception_digest(control_id: str, resource_id: str, statement: str, evidence_url: str,
                     expires_at: datetime) -> str:
    """A risk acceptance's content (who accepted it does not count)."""
    return _digest(["exception", control_id, resource_id, statement, evidence_url,
                    _when(expires_at)])


def exception_name(control_id: str, resource_id: str) -> str:
    """`control:resource`: control ids have no `:`, so the split is unambiguous."""
    return f"{control_id}:{resource_id}"


@dataclass(frozen=True)
class GitObject:
    """One object a commit declares, with the event or record that publishes it."""

    kind: Kind
    name: str
    """Its id within the kind (policy id, runbook id, resource id, rule id, control:resource)."""
    digest: str
    """Content digest (see the functions above)."""
    source: str
    """The file it was read from (for messages)."""
    payload: PolicyVersion | tuple[Runbook, str] | DesiredState | IgnoreRule | \
        ComplianceAttestation
    """A draft of what is published (ids, versions and authors are set by the plan)."""

    @property
    def ref(self) -> str:
        """`kind/name`: the object's identity in manifests and sync records."""
        return f"{self.kind}/{self.name}"


def _live_policies(shared: SharedState) -> dict[str, str]:
    return {f"policy/{p.policy_id}": policy_digest(p.rego, p.enforcement, p.policy_type, p.name)
            for p in shared.policies.active()}


def _live_attestations(shared: SharedState, now: datetime) -> dict[str, str]:
    out = {}
    for r in shared.attestations.records():
        if r.kind == "acceptance" and r.active(now):
            out[f"exception/{exception_name(r.control_id, r.resource_id)}"] = exception_digest(
                r.control_id, r.resource_id, r.statement, r.evidence_url, r.expires_at)
    return out


def live_digests(shared: SharedState, now: datetime) -> dict[str, str]:
    """Digest of every live object of the five kinds (disabled policies, withdrawn baselines,
    removed rules, revoked or expired acceptances are not live)."""
    live = _live_policies(shared)
    live |= {f"runbook/{r.runbook_id}": r.content_hash for r in shared.runbooks.records()}
    live |= {f"baseline/{s.resource_id}": baseline_digest(s.resource_type, s.config)
             for s in shared.desired}
    live |= {f"ignore/{r.rule_id}": ignore_digest(r) for r in shared.ignores.rules}
    return live | _live_attestations(shared, now)


def out_of_band(manifest: dict[str, str], live: dict[str, str]) -> dict[str, str]:
    """Objects the serving commit manages whose live content differs from it: ref → `changed`
    (another content is live) or `removed` (nothing is live: disabled, withdrawn, revoked)."""
    return {ref: "changed" if ref in live else "removed"
            for ref, digest in sorted(manifest.items()) if live.get(ref) != digest}
