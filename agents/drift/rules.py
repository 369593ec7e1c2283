"""Ignore rules (with reasons and expiry) and list-comparison rules, loaded from YAML."""

from __future__ import annotations

import fnmatch
import hashlib
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from agents.drift.diff import ListMode
from agents.drift.pointer import parse_pattern
from schemas.errors import RejectedError

__all__ = [
    "DEFAULT_IGNORES_FILE",
    "IgnoreRule",
    "IgnoreSet",
    "ListRule",
    "load_ignores",
    "save_ignores",
    "type_matches",
]

DEFAULT_IGNORES_FILE = Path(__file__).with_name("default_ignores.yaml")
"""Computed fields every deployment ignores (ids, ARNs, timestamps, etags, status, …)."""


def type_matches(pattern: str, resource_type: str) -> bool:
    """Glob match of a resource type (`aws_*`, `*`)."""
    return pattern == "*" or pattern == resource_type or fnmatch.fnmatchcase(resource_type, pattern)


def _valid_pattern(value: str) -> str:
    try:
        parse_pattern(value)
    except ValueError as exc:
        raise ValueError(f"{exc}; write patterns like /tags/3 or **/arn") from exc
    return value


class IgnoreRule(BaseModel):
    """Do not compare (or count) a path of a resource type, optionally until a point in time."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    path: str
    """JSON-pointer pattern: `*` matches one segment (or part of it), `**` any number of them."""
    resource_type: str = "*"
    """Resource type glob the rule applies to."""
    reason: str = ""
    """Why the difference is expected, for the people who read findings."""
    expires_at: datetime | None = None
    """After this time the rule stops applying (a temporary ignore); None = permanent."""
    created_by: str = "unknown"
    """Who added the rule."""

    @field_validator("path")
    @classmethod
    def _pattern(cls, value: str) -> str:
        return _valid_pattern(value)

    @field_validator("expires_at")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value

    @property
    def rule_id(self) -> str:
        """Stable short id (type + path) for `drift ignore remove`."""
        return hashlib.sha256(f"{self.resource_type}\0{self.path}".encode()).hexdigest()[:10]

    def active(self, now: datetime) -> bool:
        """Whether the rule applies at `now`."""
        return self.expires_at is None or now < self.expires_at


class ListRule(BaseModel):
    """How to compare the list at a path of a resource type: by index, as a set, or by key."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    path: str
    """JSON-pointer pattern of the list (`/ingress`, `**/containers`)."""
    mode: ListMode = "set"
    """index (order matters), set (order and duplicates positions do not), key (pair by `key`)."""
    resource_type: str = "*"
    """Resource type glob the rule applies to."""
    key: str = ""
    """Field that identifies an element in key mode (e.g. `name`, `port`)."""

    @field_validator("path")
    @classmethod
    def _pattern(cls, value: str) -> str:
        return _valid_pattern(value)


class IgnoreSet:
    """A mutable collection of ignore rules; lookups take the time so that expiry is testable."""

    def __init__(self, rules: Iterable[IgnoreRule] = ()) -> None:
        self._rules: list[IgnoreRule] = []
        self.version = 0
        """Bumped on every change, so compiled matchers know when to rebuild."""
        for rule in rules:
            self.add(rule)

    @property
    def rules(self) -> list[IgnoreRule]:
        """All rules, active or expired."""
        return list(self._rules)

    def add(self, rule: IgnoreRule) -> IgnoreRule:
        """Add or replace (same type and path) a rule."""
        self._rules = [r for r in self._rules if r.rule_id != rule.rule_id] + [rule]
        self.version += 1
        return rule

    def remove(self, rule_id: str) -> IgnoreRule:
        """Remove a rule by id (or unique id prefix); RejectedError when none or several match."""
        found = [r for r in self._rules if r.rule_id.startswith(rule_id)]
        if len(found) != 1:
            raise RejectedError(
                f"{len(found)} ignore rules match id {rule_id!r}; see `drift ignore list`"
            )
        self._rules.remove(found[0])
        self.version += 1
        return found[0]

    def for_type(self, resource_type: str, now: datetime) -> list[IgnoreRule]:
        """Rules active at `now` for a resource type."""
        return [
            r for r in self._rules if r.active(now) and type_matches(r.resource_type, resource_type)
        ]

    def next_expiry(self, now: datetime) -> datetime | None:
        """The earliest future expiry, after which compiled matchers must be rebuilt."""
        future = [
            r.expires_at for r in self._rules if r.expires_at is not None and r.expires_at > now
        ]
        return min(future, default=None)

    def extend(self, other: IgnoreSet) -> IgnoreSet:
        """Add all rules of another set (later ones win on the same id)."""
        for rule in other.rules:
            self.add(rule)
        return self


def load_ignores(path: Path | str) -> IgnoreSet:
    """Read rules from YAML: a list, or a mapping with `ignores:`. A missing file is empty."""
    file = Path(path)
    if not file.exists():
        return IgnoreSet()
    data: Any = yaml.safe_load(file.read_text(encoding="utf-8")) or []
    items = data.get("ignores", []) if isinstance(data, dict) else data
    if not isinstance(items, list):
        raise RejectedError(f"{file}: expected a list of ignore rules under `ignores:`")
    try:
        return IgnoreSet(IgnoreRule.model_validate(item) for item in items)
    except ValidationError as exc:
        raise RejectedError(f"{file}: invalid ignore rule: {exc}") from exc


def save_ignores(rules: IgnoreSet, path: Path | str) -> None:
    """Write rules as YAML (`ignores:` list), creating the folder."""
    file = Path(path)
    file.parent.mkdir(parents=True, exist_ok=True)
    items = [
        r.model_dump(mode="json", exclude_defaults=True) | {"path": r.path} for r in rules.rules
    ]
    file.write_text(yaml.safe_dump({"ignores": items}, sort_keys=False), encoding="utf-8")
