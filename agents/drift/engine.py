"""Compare a config with its baseline: hash fast path, then the rule-aware diff and severity."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson

from agents.drift.canonical import normalise, raw_bytes
from agents.drift.config import DriftConfig
from agents.drift.diff import Change, Differ, DiffSpec, ListMode
from agents.drift.pointer import Matcher
from agents.drift.rules import DEFAULT_IGNORES_FILE, IgnoreSet, load_ignores, type_matches
from agents.drift.severity import classify
from schemas.envelope import utc_now

__all__ = ["DriftEngine", "DriftReport", "Snapshot"]

_OPTS = orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS


@dataclass(frozen=True)
class Snapshot:
    """A config prepared for comparison; build it once per baseline and keep it."""

    config: dict[str, Any]
    normalised: Any
    hash: str
    raw: bytes


@dataclass
class DriftReport:
    """The result of one comparison."""

    resource_type: str
    baseline_hash: str
    current_hash: str
    changes: list[Change] = field(default_factory=list)
    total_leaves: int = 0
    drifted_leaves: int = 0
    ratio: float = 0.0
    severity: str = "INFO"
    sensitive: bool = False

    @property
    def drifted(self) -> bool:
        """Whether anything that is not ignored differs."""
        return bool(self.changes)

    @property
    def changed_fields(self) -> list[str]:
        """RFC 6901 pointers of the changes."""
        return [c.path for c in self.changes]


@dataclass
class _Compiled:
    differ: Differ
    version: tuple[int, ...]
    valid_until: datetime | None


class DriftEngine:
    """Pure comparison service: holds the rules, compiles them per resource type, caches that."""

    def __init__(
        self,
        config: DriftConfig | None = None,
        ignores: IgnoreSet | None = None,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.config = config or DriftConfig()
        self.clock = clock
        self.ignore_sets: list[IgnoreSet] = []
        if self.config.default_ignores:
            self.ignore_sets.append(load_ignores(DEFAULT_IGNORES_FILE))
        if self.config.ignore_file is not None:
            self.ignore_sets.append(load_ignores(self.config.ignore_file))
        self.ignores = ignores if ignores is not None else IgnoreSet()
        """The mutable set that the API / CLI adds rules to."""
        self.ignore_sets.append(self.ignores)
        self._compiled: dict[str, _Compiled] = {}

    def snapshot(self, config: dict[str, Any]) -> Snapshot:
        """Prepare a config (normally a baseline) for repeated comparisons."""
        norm = normalise(config, self.config.empty_equivalent)
        canon = orjson.dumps({} if norm is None else norm, option=_OPTS)
        return Snapshot(config, norm, hashlib.sha256(canon).hexdigest(), raw_bytes(config))

    def compare(
        self, resource_type: str, baseline: Snapshot, current: dict[str, Any]
    ) -> DriftReport:
        """Diff `current` against a prepared baseline; identical canonical forms skip the diff."""
        if raw_bytes(current) == baseline.raw:
            return DriftReport(resource_type, baseline.hash, baseline.hash)
        snap = self.snapshot(current)
        if snap.hash == baseline.hash:
            return DriftReport(resource_type, baseline.hash, snap.hash)
        result = self._differ(resource_type).diff(baseline.normalised, snap.normalised)
        report = DriftReport(
            resource_type,
            baseline.hash,
            snap.hash,
            result.changes,
            result.total_leaves,
            result.drifted_leaves,
        )
        if result.changes:
            report.ratio = result.ratio
            report.sensitive = result.sensitive
            report.severity = classify(result.ratio, result.sensitive, self.config.bands)
        return report

    def compare_configs(
        self, resource_type: str, baseline: dict[str, Any], current: dict[str, Any]
    ) -> DriftReport:
        """One-off comparison of two plain configs."""
        return self.compare(resource_type, self.snapshot(baseline), current)

    def deleted(self, resource_type: str, baseline: Snapshot) -> DriftReport:
        """A resource that has a baseline was deleted: every field drifted."""
        result = self._differ(resource_type).diff(baseline.normalised, None)
        total = max(result.total_leaves, 1)
        change = Change("", "removed", baseline.config, None, total, result.sensitive)
        return DriftReport(
            resource_type,
            baseline.hash,
            "",
            [change],
            total,
            total,
            1.0,
            classify(1.0, result.sensitive, self.config.bands),
            result.sensitive,
        )

    def _differ(self, resource_type: str) -> Differ:
        now = self.clock()
        version = tuple(s.version for s in self.ignore_sets)
        cached = self._compiled.get(resource_type)
        if (
            cached is None
            or cached.version != version
            or (cached.valid_until is not None and now >= cached.valid_until)
        ):
            cached = _Compiled(Differ(self._spec(resource_type, now)), version, self._expiry(now))
            self._compiled[resource_type] = cached
        return cached.differ

    def _expiry(self, now: datetime) -> datetime | None:
        expiries = [e for s in self.ignore_sets if (e := s.next_expiry(now)) is not None]
        return min(expiries, default=None)

    def _spec(self, resource_type: str, now: datetime) -> DiffSpec:
        cfg = self.config
        ignore = [r.path for s in self.ignore_sets for r in s.for_type(resource_type, now)]
        lists = [r for r in cfg.list_rules if type_matches(r.resource_type, resource_type)]
        modes: list[tuple[ListMode, str]] = [(r.mode, r.key) for r in lists]
        return DiffSpec(
            ignore=Matcher(ignore),
            sensitive=Matcher(cfg.sensitive_paths, case_sensitive=False),
            lists=Matcher([r.path for r in lists]),
            list_modes=modes,
            all_sensitive=any(type_matches(t, resource_type) for t in cfg.sensitive_resource_types),
        )
