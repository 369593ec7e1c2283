"""From a valid commit and what is serving to the records that make the live state equal git.

Event ids derive from (repository, commit, object, change), so publishing a plan twice (a retry
after a failed transaction, two reconcilers) publishes the same events: the registries fold
each id once and the history keeps one row.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from agents.gitops.objects import GitObject
from agents.shared import ignore_record
from policies.registry import PolicyRegistry
from runbooks.model import Runbook
from runbooks.registry import RunbookRecord
from schemas import DesiredState, Event, GitSync, PolicyVersion
from schemas.attestations import ComplianceAttestation
from schemas.errors import RejectedError

__all__ = ["Commit", "Record", "SyncPlan", "build_plan", "sync_id"]

SOURCE = "novacron.gitops"
_NS = uuid.UUID("a3d5c0de-61f0-4e5b-9a1c-2b7f6c0e9d41")


@dataclass(frozen=True)
class Record:
    """A raw record of a compacted topic that carries no event (ignore rules, runbooks)."""

    topic: str
    """Logical topic name."""
    key: bytes
    value: bytes | None
    """None: a tombstone (the object is removed)."""


@dataclass(frozen=True)
class Commit:
    """The commit being applied."""

    repo: str
    branch: str
    sha: str
    author: str
    message: str


@dataclass
class SyncPlan:
    """Everything one sync publishes, in one Kafka transaction, the sync record last."""

    commit: Commit
    events: list[Event] = field(default_factory=list)
    records: list[Record] = field(default_factory=list)
    sync: GitSync | None = None
    problems: list[str] = field(default_factory=list)


def _id(commit: Commit, *parts: str) -> str:
    return str(uuid.uuid5(_NS, "/".join((commit.repo, commit.sha, *parts))))


def sync_id(commit: Commit, status: str) -> str:
    """The sync record's event id (one per repository, commit and outcome)."""
    return _id(commit, "sync", status)


def build_plan(commit: Commit, objects: Mapping[str, GitObject], manifest: Mapping[str, str],
               live: Mapping[str, str], policies: PolicyRegistry, *, self_heal: bool,
               now: datetime) -> SyncPlan:
    """The events and records that apply `objects` over what `manifest` (the serving commit)
    and `live` (the topics) hold; `problems` when the registry would refuse a policy."""
    plan = SyncPlan(commit)
    added, changed = [], []
    for ref, obj in sorted(objects.items(), key=lambda kv: _order(kv[1])):
        before = manifest.get(ref)
        in_git_changed = before is not None and before != obj.digest
        out_of_band = live.get(ref) != obj.digest
        if before is None:
            added.append(ref)
        elif in_git_changed or (self_heal and out_of_band):
            changed.append(ref)
        if out_of_band and (before is None or in_git_changed or self_heal):
            # the replaced content is part of the id: a retry repeats it, a second heal does not
            _publish(plan, obj, live.get(ref, "-"), policies, now)
    pruned = sorted(ref for ref in manifest if ref not in objects)
    for ref in pruned:
        if ref in live:
            _withdraw(plan, ref, policies, now)
    plan.sync = GitSync(
        event_id=sync_id(commit, "applied"), source=SOURCE, event_time=now, repo=commit.repo,
        branch=commit.branch, commit=commit.sha, author=commit.author[:256],
        message=commit.message[:512], status="applied", serving=commit.sha, added=added,
        changed=changed, pruned=pruned, manifest={r: o.digest for r, o in objects.items()})
    return plan


def _order(obj: GitObject) -> tuple[int, str]:
    # policies first, so that a runbook or baseline of the same commit is judged by them
    return ("policy", "runbook", "baseline", "ignore", "exception").index(obj.kind), obj.ref


def _publish(plan: SyncPlan, obj: GitObject, replaced: str, policies: PolicyRegistry,
             now: datetime) -> None:
    commit, event_id = plan.commit, _id(plan.commit, obj.ref, replaced)
    if isinstance(obj.payload, PolicyVersion):
        try:
            plan.events.append(_policy_version(event_id, commit, obj.payload, policies, now))
        except RejectedError as exc:
            plan.problems.append(f"{obj.source}: policy {obj.name}: {exc}")
    elif isinstance(obj.payload, tuple):
        book, text = obj.payload
        plan.records.append(_runbook(commit, book, text, now))
    elif isinstance(obj.payload, DesiredState):
        plan.events.append(_fresh(obj.payload, event_id, now, revision=commit.sha))
    elif isinstance(obj.payload, ComplianceAttestation):
        plan.events.append(_fresh(obj.payload, event_id, now))
    else:
        key, value = ignore_record(obj.payload)
        plan.records.append(Record("drift-ignores", key, value))


def _fresh(event: Event, event_id: str, now: datetime, **fields: Any) -> Event:
    """The draft with its final id and time; it starts its own chain (validated again)."""
    return type(event).model_validate({**event.model_dump(), **fields, "event_id": event_id,
                                       "event_time": now, "correlation_id": event_id})


def _policy_version(event_id: str, commit: Commit, draft: PolicyVersion,
                    policies: PolicyRegistry, now: datetime) -> PolicyVersion:
    history = policies.history(draft.policy_id) if _known(policies, draft.policy_id) else []
    version = max((e.version for e in history), default=0) + 1
    event = PolicyVersion(
        event_id=event_id, event_time=now, source=SOURCE, policy_id=draft.policy_id,
        name=draft.name, policy_type=draft.policy_type, version=version, rego=draft.rego,
        content_hash=draft.content_hash, enforcement=draft.enforcement, enabled=True,
        author=commit.author[:256] or "gitops", signature=draft.signature,
        change="update" if history else "register")
    policies.verify(event)  # signature, trusted keys, type, package: RejectedError
    return event


def _known(policies: PolicyRegistry, policy_id: str) -> bool:
    try:
        policies.get(policy_id)
    except RejectedError:
        return False
    return True


def _runbook(commit: Commit, book: Runbook, text: str, now: datetime) -> Record:
    record = RunbookRecord(runbook_id=book.id, yaml=text, content_hash=book.content_hash,
                           author=commit.author[:256] or "gitops", origin="git",
                           revision=commit.sha, updated_at=now)
    key, value = record.encode()
    return Record("runbooks", key, value)


def _withdraw(plan: SyncPlan, ref: str, policies: PolicyRegistry, now: datetime) -> None:
    kind, _, name = ref.partition("/")
    commit, event_id = plan.commit, _id(plan.commit, ref, "prune")
    if kind == "policy":
        current = policies.get(name)
        fields: dict[str, Any] = current.model_dump(exclude={
            "event_id", "event_time", "source", "correlation_id", "causation_id"})
        plan.events.append(PolicyVersion(**{**fields, "event_id": event_id, "event_time": now,
                                            "source": SOURCE, "enabled": False,
                                            "change": "disable",
                                            "author": commit.author[:256] or "gitops"}))
    elif kind == "baseline":
        plan.events.append(DesiredState(event_id=event_id, event_time=now, source=SOURCE,
                                        resource_id=name, resource_type="?", origin="git",
                                        revision=commit.sha, author=commit.author[:256],
                                        deleted=True))
    elif kind == "exception":
        control_id, _, resource_id = name.partition(":")
        plan.events.append(ComplianceAttestation(
            event_id=event_id, event_time=now, source=SOURCE, kind="acceptance",
            control_id=control_id, resource_id=resource_id, by=commit.author[:256] or "gitops",
            statement=f"removed from {commit.repo} at {commit.sha[:12]}",
            expires_at=now + timedelta(days=365), revoked=True))
    else:  # runbook, ignore: a tombstone
        plan.records.append(Record("runbooks" if kind == "runbook" else "drift-ignores",
                                   name.encode(), None))
