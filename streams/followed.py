"""A process's followed compacted topics, each read by one reader into its one SharedState."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable

from aiokafka import ConsumerRecord

from agents.shared import FOLLOWED_TOPICS, SharedState
from schemas.errors import NovacronError
from streams.host_metrics import HostMetrics
from streams.reader import Consumer, Handler, TopicReader, TopicSource, source_of
from streams.settings import KafkaConfig

__all__ = ["FollowedTopics"]

log = logging.getLogger(__name__)


class FollowedTopics:
    """One reader per followed topic (logical name), all folding into one SharedState.

    Everything of a role that needs desired state, ignore rules, runbooks … reads that one copy;
    `catch_up` folds what the topics gained since the last call. The role's host calls it under
    its own lock (before a batch and on every tick), so a fold never runs while agents read.
    """

    def __init__(self, shared: SharedState, kafka: KafkaConfig, topics: Iterable[str] = (), *,
                 metrics: HostMetrics, role: str, source: TopicSource | None = None) -> None:
        self.shared, self.kafka, self.metrics, self.role = shared, kafka, metrics, role
        self.source: TopicSource = source_of(kafka if source is None else source)
        self._readers: dict[str, TopicReader] = {}
        self._offsets: Consumer | None = None
        """Asks the end offsets of every followed topic in one request per catch-up (a reader
        each would send one per topic: per host batch, the role's most frequent request)."""
        self._started = False
        self._lock = asyncio.Lock()
        self.ready = asyncio.Event()
        """Set once every followed topic was read to its end offsets."""
        self.need(*topics)

    @property
    def topics(self) -> list[str]:
        return list(self._readers)

    def need(self, *topics: str) -> None:
        """Follow these topics too (each is read once, however many need it)."""
        unknown = [t for t in topics if t not in FOLLOWED_TOPICS]
        if unknown:
            raise ValueError(f"{unknown} are not followed topics ({', '.join(FOLLOWED_TOPICS)})")
        new = [t for t in topics if t not in self._readers]
        if new and self._started:
            raise RuntimeError(f"{new} must be followed before the readers start")
        for t in new:
            self._readers[t] = TopicReader(self.source, self.kafka.topic(t),
                                           own_end_offsets=False)

    async def start(self) -> None:
        self._started = True
        for reader in self._readers.values():
            await reader.start()
        if self._readers:
            self._offsets = self.source.consumer()
            await self._offsets.start()

    async def catch_up(self) -> None:
        """Fold every record the followed topics hold now."""
        async with self._lock:
            if self._readers:
                if self._offsets is None:  # never "ready" with nothing read
                    raise RuntimeError(f"{self.role}: followed topics caught up before start()")
                # every topic's end offsets in one request (once per host batch), then folded
                # topic by topic in the usual order
                ends = await self._offsets.end_offsets(
                    [tp for r in self._readers.values() for tp in r.partitions_read])
                for logical, reader in self._readers.items():
                    await reader.catch_up(self._folder(logical),
                                          {tp: ends[tp] for tp in reader.partitions_read})
        self.ready.set()

    def _folder(self, logical: str) -> Handler:
        async def fold(records: list[ConsumerRecord]) -> None:
            for r in records:
                try:
                    self.shared.apply(logical, r.key, r.value)
                except NovacronError as exc:  # written by hand or by a newer version: say so
                    log.warning("%s: skipping %s[%d]@%d: %s", self.role, logical, r.partition,
                                r.offset, exc)
                    self.metrics.followed.labels(logical, "rejected").inc()
                else:
                    self.metrics.followed.labels(logical, "ok").inc()
        return fold

    async def stop(self) -> None:
        for reader in self._readers.values():
            await reader.stop()
        if self._offsets is not None:
            await self._offsets.stop()
            self._offsets = None
