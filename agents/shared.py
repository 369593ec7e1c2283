"""Desired state, drift ignore rules, compliance attestations, the deployed model version, the
policy and runbook registries and the latest GitOps sync: one copy per process.

These live in compacted topics that every process of a role reads in full and keeps following
(no consumer group), because any instance may need any resource's baseline or any rule. The host
folds their records in with `apply`; agents read the result. Records are written by the CLI and
the API from any machine, so nothing depends on one process's memory or a pod's disk.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TypeVar

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from agents.drift.baseline import BaselineStore
from agents.drift.rules import IgnoreRule, IgnoreSet
from policies.compliance.attestations import AttestationStore
from policies.registry import PolicyRegistry
from runbooks.registry import RunbookStore
from schemas import DesiredState, Event, GitSync, PolicyVersion
from schemas.attestations import ATTESTATION_TOPIC, ComplianceAttestation
from schemas.codec import Codec, describe_validation_error
from schemas.envelope import utc_now
from schemas.errors import DecodeError, RejectedError, SchemaViolation

__all__ = [
    "FOLLOWED_TOPICS",
    "MODEL_KEY",
    "DeployedModel",
    "SharedState",
    "ignore_record",
    "model_record",
]

MODEL_KEY = b"dqn"
"""Key of the decision engine's deployed-version record in `model-versions`."""
_INTERNAL_MAX_BYTES = 16 * 1_048_576
M = TypeVar("M", bound=BaseModel)


class DeployedModel(BaseModel):
    """The model version running workers must use (`novacron model rollback` writes it)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    version: str = Field(pattern=r"^(shipped-)?v\d{4}$")
    """A checkpoint version (v0003), or a shipped one (shipped-v0003)."""
    set_by: str = Field(default="cli", max_length=256)
    """Who deployed it."""
    set_at: datetime = Field(default_factory=utc_now)
    """When."""
    reason: str = Field(default="", max_length=1024)
    """Why, for the people reading the history."""


def ignore_record(rule: IgnoreRule) -> tuple[bytes, bytes]:
    """The `drift-ignores` record of a rule: key = its id (a tombstone removes it)."""
    return rule.rule_id.encode(), rule.model_dump_json().encode()


def model_record(model: DeployedModel) -> tuple[bytes, bytes]:
    """The `model-versions` record that deploys a version."""
    return MODEL_KEY, model.model_dump_json().encode()


class SharedState:
    """The followed topics of a role, folded: baselines, ignore rules, the deployed model."""

    def __init__(self, codec: Codec | None = None) -> None:
        self.codec = codec or Codec()
        self.desired = BaselineStore()
        """Latest baseline per resource (drift now; the policy gate reads the same copy)."""
        self.ignores = IgnoreSet()
        """Drift ignore rules from the `drift-ignores` topic."""
        self.model: DeployedModel | None = None
        """The deployed decision model, None until someone deploys one."""
        self.attestations = AttestationStore()
        """Compliance attestations and risk acceptances (latest record per key)."""
        self.new_attestations: list[ComplianceAttestation] = []
        """Records folded since the compliance agent last took them (`take_attestations`)."""
        self.policies = PolicyRegistry()
        """The policy registry (`policies` topic); set `policies.config` to the trust settings."""
        self.runbooks = RunbookStore()
        """Runbooks of the registry topic (`runbooks`), content hashes checked."""
        self.gitsync: dict[str, GitSync] = {}
        """The latest GitOps sync record per repository (`gitops` topic): what is serving."""
        self._folds: dict[str, Callable[[bytes | None, bytes | None], None]] = {
            "desired": self._desired,
            "drift-ignores": self._ignore,
            "model-versions": self._model,
            ATTESTATION_TOPIC: self._attestation,
            "policies": self._policy,
            "runbooks": self.runbooks.apply,
            "gitops": self._gitsync,
        }

    def apply(self, topic: str, key: bytes | None, value: bytes | None) -> None:
        """Fold one record of a followed topic (logical name); DeadLetterError when unusable."""
        fold = self._folds.get(topic)
        if fold is None:
            raise RejectedError(f"{topic!r} is not a followed topic ({', '.join(self._folds)})")
        fold(key, value)

    def observe(self, event: Event) -> None:
        """Fold an already decoded event (tests, and events published by this process)."""
        if isinstance(event, DesiredState):
            self.desired.apply(event)
        elif isinstance(event, PolicyVersion):
            self.policies.apply(event)

    def _desired(self, key: bytes | None, value: bytes | None) -> None:
        if value is None:  # a tombstone withdraws the resource's baseline
            if key:
                rid = key.decode("utf-8", "replace")
                self.desired.apply(DesiredState(resource_id=rid, resource_type="?", deleted=True))
            return
        self.observe(self.codec.decode(value, DesiredState, max_bytes=_INTERNAL_MAX_BYTES))

    def _ignore(self, key: bytes | None, value: bytes | None) -> None:
        rule_id = (key or b"").decode("utf-8", "replace")
        if value is None:
            if any(r.rule_id == rule_id for r in self.ignores.rules):
                self.ignores.remove(rule_id)
            return
        rule = _parse(IgnoreRule, value)
        if rule.rule_id != rule_id:  # a rule under a foreign key could never be removed
            raise SchemaViolation(f"ignore rule {rule.rule_id} published under key {rule_id!r}")
        self.ignores.add(rule)

    def take_attestations(self) -> list[ComplianceAttestation]:
        """The attestation records folded since the last call, in log order."""
        taken, self.new_attestations = self.new_attestations, []
        return taken

    def _attestation(self, key: bytes | None, value: bytes | None) -> None:
        if value is None:  # compaction removes the key; a withdrawal is a record with revoked set
            return
        record = self.codec.decode(value, ComplianceAttestation, max_bytes=_INTERNAL_MAX_BYTES)
        self.attestations.apply(record)
        self.new_attestations.append(record)

    def _policy(self, key: bytes | None, value: bytes | None) -> None:
        if value is not None:  # a registry never forgets a policy: disabling is a version
            self.policies.apply(self.codec.decode(value, PolicyVersion,
                                                  max_bytes=_INTERNAL_MAX_BYTES))

    def _gitsync(self, key: bytes | None, value: bytes | None) -> None:
        if value is None:
            self.gitsync.pop((key or b"").decode("utf-8", "replace"), None)
            return
        record = self.codec.decode(value, GitSync, max_bytes=_INTERNAL_MAX_BYTES)
        self.gitsync[record.repo] = record

    def _model(self, key: bytes | None, value: bytes | None) -> None:
        if key != MODEL_KEY:
            raise SchemaViolation(f"unknown model key {key!r}; expected {MODEL_KEY!r}")
        self.model = None if value is None else _parse(DeployedModel, value)


def _parse(model: type[M], value: bytes) -> M:
    try:
        return model.model_validate(orjson.loads(value))
    except orjson.JSONDecodeError as exc:
        raise DecodeError(f"not valid JSON: {exc}") from exc
    except ValidationError as exc:
        raise SchemaViolation(describe_validation_error(exc)) from exc


FOLLOWED_TOPICS: tuple[str, ...] = ("desired", "drift-ignores", "model-versions", ATTESTATION_TOPIC,
                                    "policies", "runbooks", "gitops")
"""Logical names of the topics `SharedState.apply` folds."""
