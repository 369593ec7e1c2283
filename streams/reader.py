"""The one reader of compacted and group-less topics: read to the end offsets, then follow."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Protocol

from aiokafka import ConsumerRecord, TopicPartition
from aiokafka.structs import OffsetAndTimestamp

from schemas.errors import NonRetryableError
from streams import kafka_clients
from streams.settings import KafkaConfig

__all__ = ["Consumer", "Handler", "KafkaSource", "Latest", "MemoryConsumer", "MemoryLog",
           "TopicReader", "TopicSource", "read_latest", "read_to_end", "source_of",
           "topic_partitions"]

TOPIC_AUTHORIZATION_FAILED = 29
"""Kafka's error code for a topic the principal may not describe (no ACL)."""
Handler = Callable[[list[ConsumerRecord]], Awaitable[None]]
"""Receives one fetched batch of records of one partition, in offset order."""


class Consumer(Protocol):
    """What the reader needs of a consumer without a group (aiokafka's, or `MemoryLog`'s)."""

    async def start(self) -> None: ...
    async def stop(self) -> None: ...
    def assign(self, partitions: list[TopicPartition]) -> None: ...
    async def seek_to_beginning(self, *partitions: TopicPartition) -> object: ...
    async def seek_to_end(self, *partitions: TopicPartition) -> object: ...
    async def position(self, partition: TopicPartition) -> int: ...
    async def end_offsets(self, partitions: list[TopicPartition]) -> dict[TopicPartition, int]: ...
    async def offsets_for_times(self, timestamps: dict[TopicPartition, int]
                                ) -> dict[TopicPartition, OffsetAndTimestamp | None]: ...
    def seek(self, partition: TopicPartition, offset: int) -> None: ...
    async def getmany(self, *partitions: TopicPartition, timeout_ms: int = 0,
                      max_records: int | None = None
                      ) -> dict[TopicPartition, list[ConsumerRecord]]: ...


class TopicSource(Protocol):
    """Where a reader gets its consumer and a topic's partitions: the broker or a fake."""

    def consumer(self) -> Consumer: ...
    async def partitions(self, topic: str) -> set[int]: ...


async def topic_partitions(kafka: KafkaConfig, topic: str, attempts: int = 50) -> set[int]:
    """The partitions of a topic; NonRetryableError when it does not exist."""
    admin = kafka_clients.admin(kafka)
    await admin.start()
    try:
        for _ in range(attempts):  # metadata of a just-created topic may lag a moment
            for t in await admin.describe_topics([topic]):
                if t.get("topic") == topic and t.get("error_code") == TOPIC_AUTHORIZATION_FAILED:
                    raise NonRetryableError(f"{kafka_clients.describe(kafka)} may not read "
                                            f"{topic}: see its ACLs (`novacron kafka acls`)")
                if t.get("topic") == topic and t.get("partitions"):
                    return {p["partition"] for p in t["partitions"]}
            await asyncio.sleep(0.2)
    finally:
        await admin.close()
    raise NonRetryableError(f"topic {topic} does not exist; run `novacron topics create`")


IDLE_FETCH_WAIT_MS = 500
"""How long the broker holds a reader's fetch while its topic has nothing new. A new record
answers a held fetch at once, so this only sets how often an idle reader asks again: a role
reads its followed topics all the time (govern: six, and the approvals), and at 100 ms they
made half of govern's fetches (106/s → 54/s at 1,000 samples/s in the end-to-end bench). End
offsets come from another client, never behind a held fetch (TopicReader.start,
FollowedTopics)."""


@dataclass(frozen=True)
class KafkaSource:
    """The broker: a group-less consumer that never folds a record of an aborted transaction
    (a GitOps sync is one transaction over several compacted topics)."""

    kafka: KafkaConfig

    def consumer(self) -> Consumer:
        consumer: Consumer = kafka_clients.consumer(
            self.kafka, group_id=None, enable_auto_commit=False,
            fetch_max_wait_ms=IDLE_FETCH_WAIT_MS, auto_offset_reset="earliest",
            isolation_level="read_committed")
        return consumer

    async def partitions(self, topic: str) -> set[int]:
        return await topic_partitions(self.kafka, topic)


def source_of(source: KafkaConfig | TopicSource) -> TopicSource:
    """The broker of a KafkaConfig, or the given source (e.g. a MemoryLog)."""
    return KafkaSource(source) if isinstance(source, KafkaConfig) else source


class Latest:
    """The latest record per key, as compaction keeps it: a tombstone deletes its key, records
    without a key are ignored; `records()` in partition and offset order."""

    def __init__(self) -> None:
        self._by_key: dict[bytes, ConsumerRecord] = {}

    async def __call__(self, records: list[ConsumerRecord]) -> None:
        self.add(records)

    def add(self, records: Iterable[ConsumerRecord]) -> None:
        for r in records:
            if r.key is None:
                continue
            if r.value is None:
                self._by_key.pop(r.key, None)
            else:
                self._by_key.pop(r.key, None)  # a rewritten key moves to its new offset
                self._by_key[r.key] = r

    def records(self) -> list[ConsumerRecord]:
        return sorted(self._by_key.values(), key=lambda r: (r.partition, r.offset))

    def __len__(self) -> int:
        return len(self._by_key)


class TopicReader:
    """Some or all partitions of one topic, from the start, the end or a time, without a group.

    Every process that needs a whole topic (baselines, ignore rules, runbooks, the state of the
    partitions it was just assigned) reads it this way: committed group offsets would skip the
    records a restarted process must fold again. `since_ms` (epoch ms) starts each partition at
    its first record of that time or later instead.
    """

    def __init__(self, source: KafkaConfig | TopicSource, topic: str, *,
                 partitions: Iterable[int] | None = None, from_start: bool = True,
                 since_ms: int | None = None, own_end_offsets: bool = True) -> None:
        self.source = source_of(source)
        self.topic, self.from_start, self.since_ms = topic, from_start, since_ms
        self.partitions = None if partitions is None else sorted(set(partitions))
        self.own_end_offsets = own_end_offsets
        """False: the caller asks the end offsets (of several topics in one request, as
        streams.followed does) and passes them to `catch_up`; `end_offsets` is then refused."""
        self._consumer: Consumer | None = None
        self._offsets: Consumer | None = None
        self._tps: list[TopicPartition] = []
        self._lock = asyncio.Lock()  # catch_up() and follow() may share the consumer

    @property
    def partitions_read(self) -> list[TopicPartition]:
        """The topic's partitions this reader reads (known once started)."""
        return list(self._tps)

    async def start(self) -> None:
        known = await self.source.partitions(self.topic)
        wanted = known if self.partitions is None else set(self.partitions)
        if missing := wanted - known:
            raise NonRetryableError(f"{self.topic} has no partition {sorted(missing)}: create it "
                                    "with as many partitions as the topics it follows")
        consumer = self.source.consumer()
        await consumer.start()
        self._consumer = consumer
        # end offsets come from a client that never fetches: on the fetching consumer's
        # connection a ListOffsets request waits behind the in-flight fetch (up to its fetch
        # wait) at the broker, which made every catch-up (once per host batch) cost ~100 ms
        if self.own_end_offsets:
            self._offsets = self.source.consumer()
            await self._offsets.start()
        self._tps = [TopicPartition(self.topic, p) for p in sorted(wanted)]
        consumer.assign(self._tps)
        if self.since_ms is not None:
            await self._seek_to_time(consumer, self.since_ms)
        elif self.from_start:
            await consumer.seek_to_beginning(*self._tps)
        else:
            await consumer.seek_to_end(*self._tps)
        for tp in self._tps:  # resolve the positions now: later records are never skipped
            await consumer.position(tp)

    async def _seek_to_time(self, consumer: Consumer, since_ms: int) -> None:
        starts = await consumer.offsets_for_times({tp: since_ms for tp in self._tps})
        ends = await consumer.end_offsets(self._tps)
        for tp in self._tps:  # no record that recent: from the end
            start = starts.get(tp)
            consumer.seek(tp, start.offset if start is not None else ends[tp])

    async def end_offsets(self) -> dict[TopicPartition, int]:
        """The offset after the last record of each partition read, now."""
        self._require()
        if self._offsets is None:
            raise RuntimeError(f"reader of {self.topic} has no end-offsets client of its own: "
                               "pass the end offsets to catch_up")
        ends: dict[TopicPartition, int] = await self._offsets.end_offsets(self._tps)
        return ends

    async def catch_up(self, handle: Handler,
                       ends: dict[TopicPartition, int] | None = None) -> int:
        """Handle every record that existed when called (or up to `ends`, from `end_offsets`);
        return how many were read."""
        consumer = self._require()
        if ends is None:
            ends = await self.end_offsets()
        read = 0
        while [tp for tp, end in ends.items() if await consumer.position(tp) < end]:
            read += await self.poll(handle, 100)
        return read

    async def poll(self, handle: Handler, timeout_ms: int) -> int:
        """One fetch (waiting up to `timeout_ms`); return how many records were handled."""
        async with self._lock:
            batches = await self._require().getmany(timeout_ms=timeout_ms, max_records=1000)
            for records in batches.values():
                await handle(records)
        return sum(len(r) for r in batches.values())

    async def follow(self, handle: Handler, timeout_ms: int = 200) -> None:
        """Keep handling new records until cancelled."""
        while True:
            await self.poll(handle, timeout_ms)
            await asyncio.sleep(0)  # let a waiting catch_up() take the lock

    def _require(self) -> Consumer:
        if self._consumer is None:
            raise RuntimeError(f"reader of {self.topic} used before start()")
        return self._consumer

    async def stop(self) -> None:
        if self._consumer is not None:
            await self._consumer.stop()
            self._consumer = None
        if self._offsets is not None:
            await self._offsets.stop()
            self._offsets = None


async def read_to_end(source: KafkaConfig | TopicSource, topic: str,
                      partitions: Iterable[int] | None = None) -> list[ConsumerRecord]:
    """Every record of the topic (or of some partitions) up to the end offsets of the moment."""
    out: list[ConsumerRecord] = []

    async def keep(records: list[ConsumerRecord]) -> None:
        out.extend(records)

    await _read(source, topic, partitions, keep)
    return out


async def read_latest(source: KafkaConfig | TopicSource, topic: str,
                      partitions: Iterable[int] | None = None) -> list[ConsumerRecord]:
    """The latest record per key up to the end offsets of the moment (tombstones delete)."""
    latest = Latest()
    await _read(source, topic, partitions, latest)
    return latest.records()


async def _read(source: KafkaConfig | TopicSource, topic: str,
                partitions: Iterable[int] | None, handle: Handler) -> None:
    reader = TopicReader(source, topic, partitions=partitions)
    await reader.start()
    try:
        await reader.catch_up(handle)
    finally:
        await reader.stop()


@dataclass
class MemoryLog:
    """The fake TopicSource for tests: partitioned logs in memory, compaction on request."""

    topics: dict[str, int] = field(default_factory=dict)
    """Topic → number of partitions."""
    logs: dict[TopicPartition, list[ConsumerRecord]] = field(default_factory=dict)
    ends: dict[TopicPartition, int] = field(default_factory=dict)

    def append(self, topic: str, key: bytes | None, value: bytes | None, partition: int = 0,
               timestamp: int = 0) -> ConsumerRecord:
        self.topics[topic] = max(self.topics.get(topic, 1), partition + 1)
        tp = TopicPartition(topic, partition)
        offset = self.ends.get(tp, 0)
        rec = ConsumerRecord(topic, partition, offset, timestamp, 0, key, value, None,
                             len(key or b""), len(value or b""), [])
        self.logs.setdefault(tp, []).append(rec)
        self.ends[tp] = offset + 1
        return rec

    def compact(self, topic: str) -> None:
        """Keep the latest record per key (offsets keep their gaps); drop tombstones."""
        for tp, recs in self.logs.items():
            if tp.topic == topic:
                last = {r.key: r.offset for r in recs}
                self.logs[tp] = [r for r in recs if r.offset == last[r.key] and r.value is not None]

    def consumer(self) -> Consumer:
        return MemoryConsumer(self)

    async def partitions(self, topic: str) -> set[int]:
        if topic not in self.topics:
            raise NonRetryableError(f"topic {topic} does not exist; run `novacron topics create`")
        return set(range(self.topics[topic]))


class MemoryConsumer:
    """A group-less Consumer over a MemoryLog."""

    def __init__(self, log: MemoryLog) -> None:
        self.log, self.started = log, False
        self._at: dict[TopicPartition, int] = {}

    async def start(self) -> None:
        self.started = True

    async def stop(self) -> None:
        self.started = False

    def assign(self, partitions: list[TopicPartition]) -> None:
        self._at = {tp: 0 for tp in partitions}

    async def seek_to_beginning(self, *partitions: TopicPartition) -> object:
        self._at.update({tp: 0 for tp in partitions})
        return True

    async def seek_to_end(self, *partitions: TopicPartition) -> object:
        self._at.update({tp: self.log.ends.get(tp, 0) for tp in partitions})
        return True

    async def position(self, partition: TopicPartition) -> int:
        return self._at[partition]

    async def end_offsets(self, partitions: list[TopicPartition]) -> dict[TopicPartition, int]:
        return {tp: self.log.ends.get(tp, 0) for tp in partitions}

    async def offsets_for_times(self, timestamps: dict[TopicPartition, int]
                                ) -> dict[TopicPartition, OffsetAndTimestamp | None]:
        out: dict[TopicPartition, OffsetAndTimestamp | None] = {}
        for tp, ts in timestamps.items():
            at = [r for r in self.log.logs.get(tp, []) if r.timestamp >= ts]
            out[tp] = OffsetAndTimestamp(at[0].offset, at[0].timestamp) if at else None
        return out

    def seek(self, partition: TopicPartition, offset: int) -> None:
        self._at[partition] = offset

    async def getmany(self, *partitions: TopicPartition, timeout_ms: int = 0,
                      max_records: int | None = None
                      ) -> dict[TopicPartition, list[ConsumerRecord]]:
        left = max_records or 1_000_000
        out: dict[TopicPartition, list[ConsumerRecord]] = {}
        for tp in partitions or tuple(self._at):
            recs = [r for r in self.log.logs.get(tp, []) if r.offset >= self._at[tp]][:left]
            if recs:
                out[tp], left = recs, left - len(recs)
                self._at[tp] = recs[-1].offset + 1
            elif self._at[tp] < self.log.ends.get(tp, 0):  # compacted away up to the end
                self._at[tp] = self.log.ends[tp]
        if not out:
            await asyncio.sleep(min(timeout_ms, 10) / 1000)
        return out
