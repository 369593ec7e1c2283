"""One reader for compacted and group-less topics: catch up to the end offsets of the moment,
then follow.

Every process that needs a whole topic (baselines, ignore rules, the deployed model, the state of
the partitions it was just assigned) reads it this way, without a consumer group: committed
group offsets would skip the records a restarted process must fold again.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition

from schemas.errors import NonRetryableError
from streams import kafka_clients
from streams.settings import KafkaConfig

__all__ = ["Handler", "TopicReader", "read_to_end", "topic_partitions"]

TOPIC_AUTHORIZATION_FAILED = 29
"""Kafka's error code for a topic the principal may not describe (no ACL)."""
Handler = Callable[[list[ConsumerRecord]], Awaitable[None]]
"""Receives one fetched batch of records of one partition, in offset order."""


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


class TopicReader:
    """Some or all partitions of one topic, from the start (or the end), without a group."""

    def __init__(self, kafka: KafkaConfig, topic: str, *, partitions: Iterable[int] | None = None,
                 from_start: bool = True) -> None:
        self.kafka, self.topic, self.from_start = kafka, topic, from_start
        self.partitions = None if partitions is None else sorted(set(partitions))
        self._consumer: AIOKafkaConsumer | None = None
        self._offsets: AIOKafkaConsumer | None = None
        self._tps: list[TopicPartition] = []
        self._lock = asyncio.Lock()  # catch_up() and follow() may share the consumer

    async def start(self) -> None:
        known = await topic_partitions(self.kafka, self.topic)
        wanted = known if self.partitions is None else set(self.partitions)
        if missing := wanted - known:
            raise NonRetryableError(f"{self.topic} has no partition {sorted(missing)}: create it "
                                    "with as many partitions as the topics it follows")
        # read_committed: a GitOps sync is one transaction over several compacted topics; a
        # reader never folds a record of an aborted one (no cost for non-transactional writes)
        consumer = kafka_clients.consumer(self.kafka, group_id=None, enable_auto_commit=False,
                                          fetch_max_wait_ms=100, auto_offset_reset="earliest",
                                          isolation_level="read_committed")
        await consumer.start()
        self._consumer = consumer
        # end offsets come from a client that never fetches: on the fetching consumer's
        # connection a ListOffsets request waits behind the in-flight fetch (up to its fetch
        # wait) at the broker, which made every catch-up (once per host batch) cost ~100 ms
        self._offsets = kafka_clients.consumer(self.kafka, group_id=None,
                                               enable_auto_commit=False,
                                               isolation_level="read_committed")
        await self._offsets.start()
        self._tps = [TopicPartition(self.topic, p) for p in sorted(wanted)]
        consumer.assign(self._tps)
        if self.from_start:
            await consumer.seek_to_beginning(*self._tps)
        else:
            await consumer.seek_to_end(*self._tps)
        for tp in self._tps:  # resolve the positions now: later records are never skipped
            await consumer.position(tp)

    async def catch_up(self, handle: Handler) -> int:
        """Handle every record that existed when called; return how many were read."""
        consumer = self._require()
        assert self._offsets is not None
        ends = await self._offsets.end_offsets(self._tps)
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

    async def follow(self, handle: Handler) -> None:
        """Keep handling new records until cancelled."""
        while True:
            await self.poll(handle, 200)
            await asyncio.sleep(0)  # let a waiting catch_up() take the lock

    def _require(self) -> AIOKafkaConsumer:
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


async def read_to_end(kafka: KafkaConfig, topic: str, partitions: Iterable[int] | None = None
                      ) -> list[ConsumerRecord]:
    """Every record of the topic (or of some partitions) up to the end offsets of the moment."""
    out: list[ConsumerRecord] = []

    async def keep(records: list[ConsumerRecord]) -> None:
        out.extend(records)

    reader = TopicReader(kafka, topic, partitions=partitions)
    await reader.start()
    try:
        await reader.catch_up(keep)
    finally:
        await reader.stop()
    return out
