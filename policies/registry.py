"""The policy registry: versions, enable/disable, rollback and history, rebuilt from events."""

from __future__ import annotations

import threading
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from policies.signing import verify_hash
from policies.source import ENFORCEMENTS, POLICY_TYPES, content_hash, package_of
from schemas import PolicyVersion, utc_now
from schemas.errors import RejectedError

__all__ = ["PolicyRegistry", "RegistryConfig"]


class RegistryConfig(BaseModel):
    """Trust settings of the registry."""

    trusted_keys: list[str] = Field(default_factory=list)
    """Hex ed25519 public keys whose signatures are accepted."""
    require_signatures: bool = False
    """Refuse every policy version that is not signed by a trusted key."""
    source: str = "novacron.policy-registry"
    """`source` of the events the registry emits."""


class PolicyRegistry:
    """Pure registry state. Each change method returns the PolicyVersion event to publish.

    The state is the fold of `apply(event)` over the compacted `policies` topic; the change
    methods build the next event, apply it locally and return it, so the host only publishes it.

    One registry serves a whole process (the gate, the control API and the GitOps planner of
    the govern role); the planner reads it off the event loop. So `apply` replaces the history
    map instead of changing it (a reader iterates a complete map, never one that grows under
    it), and writers take a lock (no two applies build on the same old map).
    """

    def __init__(self, config: RegistryConfig | None = None) -> None:
        self.config = config or RegistryConfig()
        self._history: dict[str, list[PolicyVersion]] = {}
        self._seen: set[str] = set()
        self._write = threading.Lock()
        self.revision = 0

    # --- reading ---------------------------------------------------------------------------
    def get(self, policy_id: str) -> PolicyVersion:
        """The current state of a policy; RejectedError when unknown."""
        history = self._history.get(policy_id)
        if not history:
            msg = f"unknown policy {policy_id!r}"
            raise RejectedError(msg)
        return history[-1]

    def current(self) -> list[PolicyVersion]:
        """Current state of every policy, by id."""
        return [h[-1] for _, h in sorted(self._history.items())]

    def active(self) -> list[PolicyVersion]:
        """The enabled policies (what the engine evaluates)."""
        return [p for p in self.current() if p.enabled]

    def history(self, policy_id: str) -> list[PolicyVersion]:
        """Every event applied for a policy, oldest first."""
        self.get(policy_id)
        return list(self._history[policy_id])

    def version(self, policy_id: str, version: int) -> PolicyVersion:
        """The last event that carried a given content version."""
        for event in reversed(self.history(policy_id)):
            if event.version == version:
                return event
        msg = f"policy {policy_id!r} has no version {version}"
        raise RejectedError(msg)

    # --- folding events ----------------------------------------------------------------------
    def apply(self, event: PolicyVersion) -> bool:
        """Fold one event into the state; False for a duplicate, RejectedError for a bad one."""
        with self._write:
            if event.event_id in self._seen:
                return False
            self.verify(event)
            history = dict(self._history)
            history[event.policy_id] = [*history.get(event.policy_id, ()), event]
            self._history = history
            self._seen.add(event.event_id)
            self.revision += 1
            return True

    def apply_all(self, events: Iterable[PolicyVersion]) -> list[str]:
        """Apply events in order; returns the refusal reasons (refused events are skipped)."""
        refused = []
        for event in events:
            try:
                self.apply(event)
            except RejectedError as exc:
                refused.append(f"{event.policy_id} v{event.version}: {exc}")
        return refused

    def verify(self, event: PolicyVersion) -> None:
        """Refuse an event whose content, signature, type, package or mode is not acceptable."""
        actual = content_hash(event.rego)
        if event.content_hash and event.content_hash != actual:
            msg = "content hash does not match the Rego source (tampered or corrupted)"
            raise RejectedError(msg)
        if event.signature:
            if not verify_hash(actual, event.signature, self.config.trusted_keys):
                msg = "signature does not verify with any trusted key"
                raise RejectedError(msg)
        elif self.config.require_signatures:
            msg = "unsigned policy refused: signatures are required"
            raise RejectedError(msg)
        if event.policy_type not in POLICY_TYPES:
            msg = f"unknown policy type {event.policy_type!r}; one of {', '.join(POLICY_TYPES)}"
            raise RejectedError(msg)
        self._check_package(event)

    def _check_package(self, event: PolicyVersion) -> None:
        package = package_of(event.rego)
        for other in self.current():
            if other.policy_id != event.policy_id and package_of(other.rego) == package:
                msg = f"package {package} is already used by policy {other.policy_id!r}"
                raise RejectedError(msg)

    # --- changes -------------------------------------------------------------------------------
    def register(
        self,
        policy_id: str,
        rego: str,
        *,
        name: str = "",
        policy_type: str = "access",
        enforcement: str = "block",
        author: str = "unknown",
        signature: str | None = None,
        now: datetime | None = None,
    ) -> PolicyVersion:
        """Version 1 of a new policy."""
        if policy_id in self._history:
            msg = f"policy {policy_id!r} exists; update it instead"
            raise RejectedError(msg)
        _check_mode(enforcement)
        return self._emit(
            policy_id=policy_id,
            name=name or policy_id,
            policy_type=policy_type,
            version=1,
            rego=rego,
            enforcement=enforcement,
            enabled=True,
            author=author,
            signature=signature,
            change="register",
            event_time=now or utc_now(),
        )

    def update(
        self,
        policy_id: str,
        *,
        rego: str | None = None,
        enforcement: str | None = None,
        name: str | None = None,
        author: str = "unknown",
        signature: str | None = None,
        now: datetime | None = None,
    ) -> PolicyVersion:
        """A new version (new content and/or enforcement mode)."""
        current = self.get(policy_id)
        if enforcement is not None:
            _check_mode(enforcement)
        changes: dict[str, Any] = {"version": self._next_version(policy_id), "change": "update"}
        if rego is not None:
            changes["rego"] = rego
            changes["signature"] = signature
        if enforcement is not None:
            changes["enforcement"] = enforcement
        if name is not None:
            changes["name"] = name
        return self._derive(current, author, now, **changes)

    def enable(
        self, policy_id: str, *, author: str = "unknown", now: datetime | None = None
    ) -> PolicyVersion:
        """Evaluate the policy again (same version)."""
        return self._derive(self.get(policy_id), author, now, enabled=True, change="enable")

    def disable(
        self, policy_id: str, *, author: str = "unknown", now: datetime | None = None
    ) -> PolicyVersion:
        """Keep the policy but stop evaluating it (same version)."""
        return self._derive(self.get(policy_id), author, now, enabled=False, change="disable")

    def rollback(
        self,
        policy_id: str,
        to_version: int,
        *,
        author: str = "unknown",
        now: datetime | None = None,
    ) -> PolicyVersion:
        """A new version whose content, mode and signature are those of an earlier version."""
        old = self.version(policy_id, to_version)
        return self._derive(
            self.get(policy_id),
            author,
            now,
            rego=old.rego,
            enforcement=old.enforcement,
            signature=old.signature,
            version=self._next_version(policy_id),
            change="rollback",
        )

    def seed(
        self, policies: Iterable[PolicyVersion], *, author: str = "policies/"
    ) -> list[PolicyVersion]:
        """Register file policies (see `source.load_directory`) that the registry does not know yet.

        Known ids are left alone: the compacted topic, not the checkout, is the source of truth
        once a policy has been registered. Returns the events to publish.
        """
        emitted = []
        for p in policies:
            if p.policy_id not in self._history:
                emitted.append(
                    self.register(
                        p.policy_id,
                        p.rego,
                        name=p.name,
                        policy_type=p.policy_type,
                        enforcement=p.enforcement,
                        author=author,
                        signature=p.signature,
                    )
                )
        return emitted

    def _next_version(self, policy_id: str) -> int:
        return max(e.version for e in self.history(policy_id)) + 1

    def _derive(
        self, current: PolicyVersion, author: str, now: datetime | None, **changes: Any
    ) -> PolicyVersion:
        fields = current.model_dump(
            exclude={"event_id", "event_time", "correlation_id", "causation_id", "source"}
        )
        fields.update(changes, author=author, event_time=now or utc_now())
        return self._emit(**fields)

    def _emit(self, **fields: Any) -> PolicyVersion:
        fields["content_hash"] = content_hash(fields["rego"])
        event = PolicyVersion(source=self.config.source, **fields)
        self.apply(event)
        return event


def _check_mode(enforcement: str) -> None:
    if enforcement not in ENFORCEMENTS:
        msg = f"unknown enforcement {enforcement!r}; one of {', '.join(ENFORCEMENTS)}"
        raise RejectedError(msg)
