"""Remote-write series → MetricSamples: per-series rates with reset handling, rules per resource.

`map()` is pure with respect to the committed state: it stages every state change in the result,
and the host calls `commit()` only after Kafka acknowledged the result's events. A request that
failed (503) and is retried by Prometheus is therefore mapped again from the same state, into the
same events with the same ids.
"""

from __future__ import annotations

import hashlib
import math
import uuid
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from agents.collectors.config import RemoteWriteConfig
from agents.collectors.rejections import SampleSink, dead_letters
from agents.collectors.remote_write import Series
from agents.collectors.rules import QuantileRule, RateRule, RatioRule, aggregate, histogram_quantile
from agents.collectors.validate import (
    SeriesProblem,
    is_stale_marker,
    resource_id_problem,
    series_problem,
)
from schemas import DeadLetter, MetricSample

__all__ = ["MappedRequest", "RemoteWriteMapper", "SeriesState"]

_SAMPLE_NS = uuid.UUID("0f7b5e0e-5d8e-4b8a-9a43-6f4f0a9d2c31")
Key = tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class _Info:
    """What a series is to the rules: its key, the (rule, selector) pairs it feeds, its `le`."""

    key: Key
    feeds: frozenset[tuple[int, int]]
    le: float | None


@dataclass(frozen=True, slots=True)
class SeriesState:
    """The last accepted sample of a series and the rate it implied (None for the first one)."""

    ts: int
    value: float
    rate: float | None


_Entry = tuple[_Info, SeriesState | None]  # None: the series went stale (forget it)


@dataclass
class MappedRequest:
    """The outcome of one request: events to publish, counts, and the staged state."""

    samples: list[MetricSample] = field(default_factory=list)
    """MetricSamples for the `metrics` topic."""
    dead_letters: list[DeadLetter] = field(default_factory=list)
    """One per rejected series and reason (capped), for the `dlq` topic."""
    counts: Counter[str] = field(default_factory=Counter)
    """Samples by result: accepted, stale, duplicate, unmapped."""
    rejected: Counter[str] = field(default_factory=Counter)
    """Rejected samples by reason (validate.REJECT_REASONS)."""
    staged: dict[str, dict[Key, _Entry]] = field(default_factory=dict)
    """resource → series → new state, applied by `commit`."""

    @property
    def events(self) -> list[MetricSample | DeadLetter]:
        """Everything to publish before the request may be acknowledged."""
        return [*self.samples, *self.dead_letters]


class RemoteWriteMapper:
    """Maps decoded remote-write series to MetricSamples with configured rules; holds the
    per-series state (last sample, last rate) that counter rates need."""

    def __init__(self, config: RemoteWriteConfig | None = None) -> None:
        self.config = config or RemoteWriteConfig()
        self._state: dict[str, dict[Key, tuple[_Info, SeriesState]]] = {}
        self._infos: dict[Key, _Info] = {}

    def __len__(self) -> int:
        return sum(len(s) for s in self._state.values())

    # --- mapping ---------------------------------------------------------------------------------
    def map(self, series: Sequence[Series], now: datetime) -> MappedRequest:
        """Validate and map one request's series (the committed state is not changed)."""
        out = MappedRequest()
        sink = SampleSink()
        accepted: dict[str, list[tuple[int, int, _Info, float]]] = {}
        meta: dict[str, dict[str, str]] = {}
        last_seen: dict[tuple[str, Key], int] = {}
        now_ms = int(now.timestamp() * 1000)
        for order, s in enumerate(series):
            self._take(s, order, now_ms, out, sink, accepted, meta, last_seen)
        for rid, entries in accepted.items():
            self._walk(rid, entries, meta[rid], out)
        out.dead_letters = dead_letters(
            sink.rejections, now, self.config.max_dead_letters_per_request
        )
        out.rejected = sink.counts
        return out

    def _take(
        self,
        s: Series,
        order: int,
        now_ms: int,
        out: MappedRequest,
        sink: SampleSink,
        accepted: dict[str, list[tuple[int, int, _Info, float]]],
        meta: dict[str, dict[str, str]],
        last_seen: dict[tuple[str, Key], int],
    ) -> None:
        if s.histograms:
            sink.reject(s, "native_histogram", "native histograms are not mapped", s.histograms)
        if not s.samples:
            return
        problem = series_problem(s.labels)
        if problem is not None:
            sink.reject_all(s, problem)
            return
        labels = {k: v for k, v in s.labels if v}
        info = self._info(labels)
        if not info.feeds:
            out.counts["unmapped"] += len(s.samples)
            return
        try:
            rid = self._resource_id(labels)
        except SeriesProblem as exc:
            sink.reject_all(s, exc)
            return
        if rid not in meta:
            meta[rid] = self._meta(labels)
        bucket = accepted.setdefault(rid, [])
        for ts, value in self._fit_samples(s, rid, info, now_ms, out, sink, last_seen):
            bucket.append((ts, order, info, value))

    def _fit_samples(
        self,
        s: Series,
        rid: str,
        info: _Info,
        now_ms: int,
        out: MappedRequest,
        sink: SampleSink,
        last_seen: dict[tuple[str, Key], int],
    ) -> Iterable[tuple[int, float]]:
        cfg = self.config
        lowest = now_ms - int(cfg.max_age_seconds * 1000)
        highest = now_ms + int(cfg.max_future_seconds * 1000)
        slot = (rid, info.key)
        if slot not in last_seen:
            known = self._state.get(rid, {}).get(info.key)
            if known is not None:
                last_seen[slot] = known[1].ts
        for ts, value in s.samples:
            last = last_seen.get(slot)
            if not 0 < ts or not lowest <= ts <= highest:
                sink.add(s, "timestamp_out_of_range", ts, value)
            elif last is not None and ts < last:
                sink.add(s, "out_of_order", ts, value)
            elif last is not None and ts == last:
                out.counts["duplicate"] += 1  # a retry of what was already accepted
            elif is_stale_marker(value):
                out.counts["stale"] += 1
                last_seen[slot] = ts
                yield ts, value
            elif not math.isfinite(value):
                sink.add(s, "non_finite", ts, value)
            else:
                out.counts["accepted"] += 1
                last_seen[slot] = ts
                yield ts, value

    def _walk(
        self,
        rid: str,
        entries: list[tuple[int, int, _Info, float]],
        meta: dict[str, str],
        out: MappedRequest,
    ) -> None:
        """Apply the samples in time order; after each timestamp, evaluate the rules it fed."""
        entries.sort(key=lambda e: (e[0], e[1]))
        staged = out.staged.setdefault(rid, {})
        i = 0
        while i < len(entries):
            ts = entries[i][0]
            fed: set[int] = set()
            keys: list[Key] = []
            while i < len(entries) and entries[i][0] == ts:
                _, _, info, value = entries[i]
                if self._apply(rid, info, ts, value, staged):
                    fed.update(r for r, _ in info.feeds)
                    keys.append(info.key)
                i += 1
            if fed:
                sample = self._sample(rid, ts, sorted(fed), keys, meta, staged)
                if sample is not None:
                    out.samples.append(sample)

    def _apply(
        self, rid: str, info: _Info, ts: int, value: float, staged: dict[Key, _Entry]
    ) -> bool:
        """Stage the series' new state; True when the sample is a value (not a stale marker)."""
        if is_stale_marker(value):
            staged[info.key] = (info, None)
            return False
        prev = self._current(rid, info.key, staged)
        rate = None
        lookback_ms = self.config.lookback_seconds * 1000
        if prev is not None and prev.ts < ts and ts - prev.ts <= lookback_ms:
            delta = value - prev.value
            if delta < 0:  # a counter reset: it restarted from zero since the last sample
                delta = value
            rate = delta * 1000.0 / (ts - prev.ts)
        staged[info.key] = (info, SeriesState(ts, value, rate))
        return True

    def _current(self, rid: str, key: Key, staged: dict[Key, _Entry]) -> SeriesState | None:
        if key in staged:
            return staged[key][1]
        known = self._state.get(rid, {}).get(key)
        return known[1] if known else None

    # --- rules -----------------------------------------------------------------------------------
    def _sample(
        self,
        rid: str,
        ts: int,
        rules: list[int],
        keys: list[Key],
        meta: dict[str, str],
        staged: dict[Key, _Entry],
    ) -> MetricSample | None:
        view = self._view(rid, staged, ts)
        fields: dict[str, float] = {}
        for index in rules:
            rule = self.config.rules[index]
            value = rule.finish(self._evaluate(index, view))
            if value is not None:
                fields[rule.field] = value
        if not fields:
            return None
        extra = {k.removeprefix("extra."): v for k, v in fields.items() if k.startswith("extra.")}
        direct = {k: v for k, v in fields.items() if not k.startswith("extra.")}
        if "active_vms" in direct:
            direct["active_vms"] = int(direct["active_vms"])
        return MetricSample(
            event_id=sample_id(rid, ts, keys),
            event_time=datetime.fromtimestamp(ts / 1000, UTC),
            source=self.config.source,
            resource_id=rid,
            resource_type=meta["resource_type"],
            cluster=meta["cluster"],
            labels={k: v for k, v in meta.items() if k not in ("resource_type", "cluster")},
            extra=extra,
            **direct,
        )

    def _view(
        self, rid: str, staged: dict[Key, _Entry], ts: int
    ) -> list[tuple[_Info, SeriesState]]:
        """The resource's series whose last sample is within the look-back window of `ts`."""
        oldest = ts - self.config.lookback_seconds * 1000
        merged: dict[Key, _Entry] = {**self._state.get(rid, {}), **staged}
        return [(i, s) for i, s in merged.values() if s is not None and oldest <= s.ts <= ts]

    def _evaluate(self, index: int, view: list[tuple[_Info, SeriesState]]) -> float | None:
        rule = self.config.rules[index]
        if isinstance(rule, QuantileRule):
            buckets: dict[float, float] = {}
            for info, state in view:
                if (index, 0) in info.feeds and info.le is not None and state.rate is not None:
                    buckets[info.le] = buckets.get(info.le, 0.0) + state.rate
            return histogram_quantile(rule.quantile, buckets.items())
        if isinstance(rule, RatioRule):
            rates = rule.of == "rate"
            num = aggregate(_inputs(view, index, 0, rates), "sum")
            den = aggregate(_inputs(view, index, 1, rates), "sum")
            num = rule.numerator_default if num is None else num
            if num is None or not den:
                return None
            return 1.0 - num / den if rule.complement else num / den
        rates = isinstance(rule, RateRule)
        return aggregate(_inputs(view, index, 0, rates), rule.aggregate)

    # --- series bookkeeping ----------------------------------------------------------------------
    def _info(self, labels: dict[str, str]) -> _Info:
        key = tuple(sorted(labels.items()))
        info = self._infos.get(key)
        if info is None:
            feeds = frozenset(
                (r, s)
                for r, rule in enumerate(self.config.rules)
                for s, selector in enumerate(rule.selectors())
                if selector.selects(labels)
            )
            info = _Info(key, feeds, _le(labels.get("le")))
            if len(self._infos) >= 200_000:  # a cache, not state: bounded
                self._infos.clear()
            self._infos[key] = info
        return info

    def _resource_id(self, labels: dict[str, str]) -> str:
        for name in self.config.id_labels:
            value = labels.get(name)
            if value:
                problem = resource_id_problem(value)
                if problem is not None:
                    raise problem
                return value
        raise SeriesProblem(
            "missing_id_label", f"none of the id labels {self.config.id_labels} is present"
        )

    def _meta(self, labels: dict[str, str]) -> dict[str, str]:
        cfg = self.config
        kind = labels.get(cfg.type_label, "") if cfg.type_label else ""
        meta = {k: labels[k][:256] for k in cfg.copy_labels if k in labels}
        meta["resource_type"] = kind[:64] or cfg.resource_type
        meta["cluster"] = labels.get(cfg.cluster_label, "")[:128] or cfg.default_cluster
        return meta

    # --- state -----------------------------------------------------------------------------------
    def commit(self, mapped: MappedRequest) -> None:
        """Make a request's staged state current (call after Kafka acknowledged its events)."""
        for rid, staged in mapped.staged.items():
            series = self._state.setdefault(rid, {})
            for key, (info, state) in staged.items():
                known = series.get(key)
                if state is None:
                    series.pop(key, None)
                elif known is None or known[1].ts <= state.ts:  # a concurrent newer one wins
                    series[key] = (info, state)
            if not series:
                del self._state[rid]

    def prune(self, now: datetime) -> int:
        """Forget series silent for longer than the look-back window; return how many."""
        oldest = now.timestamp() * 1000 - self.config.lookback_seconds * 1000
        dropped = 0
        for rid in list(self._state):
            series = self._state[rid]
            for key in [k for k, (_, s) in series.items() if s.ts < oldest]:
                del series[key]
                dropped += 1
            if not series:
                del self._state[rid]
        return dropped


def _inputs(
    view: list[tuple[_Info, SeriesState]], rule: int, selector: int, rates: bool
) -> list[float]:
    pair = (rule, selector)
    values = (s.rate if rates else s.value for i, s in view if pair in i.feeds)
    return [v for v in values if v is not None]


def _le(raw: str | None) -> float | None:
    if raw is None:
        return None
    try:
        return float(raw)  # "+Inf" parses to inf
    except ValueError:
        return None


def sample_id(resource_id: str, ts: int, keys: Iterable[Key]) -> str:
    """Deterministic MetricSample id: resource, timestamp and the series that fed it, so a
    request retried by Prometheus produces the same ids (the history deduplicates on them)."""
    digest = hashlib.blake2b(digest_size=16)
    for key in sorted(keys):
        digest.update("\x1f".join(f"{k}={v}" for k, v in key).encode())
        digest.update(b"\x1e")
    return str(uuid.uuid5(_SAMPLE_NS, f"{resource_id}\x00{ts}\x00{digest.hexdigest()}"))
