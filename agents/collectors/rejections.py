"""Rejected remote-write samples: grouped per series and reason, counted, dead-lettered."""

from __future__ import annotations

import math
import uuid
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

import orjson

from agents.collectors.remote_write import Series
from agents.collectors.validate import REJECT_REASONS, SeriesProblem
from agents.ingest import DLQ_RAW_LIMIT
from schemas import DeadLetter

__all__ = ["EDGE_TOPIC", "Rejection", "SampleSink", "dead_letters", "request_dead_letter"]

EDGE_TOPIC = "prometheus-remote-write"
"""`source_topic` of remote-write dead letters (they come from HTTP, not from a topic)."""

_DLQ_NS = uuid.UUID("5a3c7f1e-2b7d-4f0e-8c61-1d9e0b7a4e55")
_MAX_SAMPLES_KEPT = 100


@dataclass
class Rejection:
    """The rejected samples of one series for one reason."""

    series: Series
    reason: str
    detail: str
    samples: list[tuple[int, float]] = field(default_factory=list)


class SampleSink:
    """Collects rejections of one request, one per (series, reason), and counts samples."""

    def __init__(self) -> None:
        self.rejections: dict[tuple[int, str], Rejection] = {}
        self.counts: Counter[str] = Counter()

    def add(self, series: Series, reason: str, ts: int, value: float) -> None:
        """Reject one sample of a series."""
        self._entry(series, reason, REJECT_REASONS[reason]).samples.append((ts, value))
        self.counts[reason] += 1

    def reject(self, series: Series, reason: str, detail: str, stamps: Iterable[int]) -> None:
        """Reject samples that carry no value worth keeping (native histograms)."""
        entry = self._entry(series, reason, detail)
        for ts in stamps:
            entry.samples.append((ts, math.nan))
            self.counts[reason] += 1

    def reject_all(self, series: Series, problem: SeriesProblem) -> None:
        """Reject every sample of a series whose labels are unusable."""
        entry = self._entry(series, problem.reason, str(problem))
        entry.samples.extend(series.samples)
        self.counts[problem.reason] += len(series.samples)

    def _entry(self, series: Series, reason: str, detail: str) -> Rejection:
        return self.rejections.setdefault(
            (id(series), reason), Rejection(series, reason, detail)
        )


def dead_letters(
    rejections: dict[tuple[int, str], Rejection], now: datetime, limit: int
) -> list[DeadLetter]:
    """One DeadLetter per rejection (ids deterministic: a retried request repeats the same ids),
    and one summary letter for those beyond `limit`, so nothing rejected goes unrecorded."""
    items = list(rejections.values())
    letters = [_letter(r, now) for r in items[:limit]]
    rest = items[limit:]
    if rest:
        counts = Counter(r.reason for r in rest)
        samples = sum(len(r.samples) for r in rest)
        summary = f"{len(rest)} more series ({samples} samples) rejected: {dict(counts)}"
        letters.append(
            DeadLetter(
                event_id=str(uuid.uuid5(_DLQ_NS, summary + "".join(_key(r) for r in rest))),
                event_time=now,
                source="novacron.collect",
                source_topic=EDGE_TOPIC,
                partition=0,
                offset=0,
                reason=summary[:8192],
                error_kind="rejected_summary",
            )
        )
    return letters


def _key(r: Rejection) -> str:
    return f"{r.reason}|{r.series.labels}|{r.samples[:1]}|{len(r.samples)}"


def _letter(r: Rejection, now: datetime) -> DeadLetter:
    labels = dict(r.series.labels)
    raw = orjson.dumps(
        {
            "labels": [list(pair) for pair in r.series.labels],
            "samples": [[ts, repr(v)] for ts, v in r.samples[:_MAX_SAMPLES_KEPT]],
            "rejected_samples": len(r.samples),
        }
    )
    name = labels.get("__name__", "")
    return DeadLetter(
        event_id=str(uuid.uuid5(_DLQ_NS, _key(r))),
        event_time=now,
        source="novacron.collect",
        source_topic=EDGE_TOPIC,
        partition=0,
        offset=0,
        reason=f"{r.reason}: {r.detail} ({len(r.samples)} samples of {name or 'a series'})"[:8192],
        error_kind=r.reason[:32],
        raw=raw,
        raw_size=len(raw),
        source_key=name[:1024] or None,
    )


def request_dead_letter(
    body: bytes, reason: str, kind: str, now: datetime, edge: str = EDGE_TOPIC
) -> DeadLetter:
    """A dead letter for a whole request that was refused with a 4xx (raw body kept, truncated)."""
    return DeadLetter(
        event_time=now,
        source="novacron.collect",
        source_topic=edge,
        partition=0,
        offset=0,
        reason=reason[:8192],
        error_kind=kind[:32],
        raw=body[:DLQ_RAW_LIMIT],
        raw_size=len(body),
    )
