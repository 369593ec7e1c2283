"""Group-less topic readers: every process sees every record of a topic (compacted state)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

__all__ = ["Handler", "TopicFollower"]

Handler = Callable[[list[ConsumerRecord]], Awaitable[None]]


class TopicFollower:
    """Every partition of one topic, without a consumer group: each process sees every record.

    `catch_up()` reads up to the end offsets of the moment it is called, so state folded from a
    compacted topic is complete before it is used; `run()` then keeps following.
    """

    def __init__(self, bootstrap: str, topic: str, handle: Handler, *, from_start: bool) -> None:
        self.bootstrap, self.topic, self.handle = bootstrap, topic, handle
        self.from_start = from_start
        self._consumer: AIOKafkaConsumer | None = None
        self._tps: list[TopicPartition] = []
        self._lock = asyncio.Lock()  # one reader at a time: run() and catch_up() share the consumer

    async def start(self) -> None:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap, group_id=None, enable_auto_commit=False,
            fetch_max_wait_ms=100, auto_offset_reset="earliest",
        )
        await consumer.start()
        self._consumer = consumer
        self._tps = [TopicPartition(self.topic, p) for p in sorted(await self._partitions())]
        consumer.assign(self._tps)
        if self.from_start:
            await consumer.seek_to_beginning(*self._tps)
        else:
            await consumer.seek_to_end(*self._tps)
        for tp in self._tps:  # resolve the positions now: later records are never skipped
            await consumer.position(tp)

    async def _partitions(self, attempts: int = 50) -> set[int]:
        admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap)
        await admin.start()
        try:
            for _ in range(attempts):  # metadata of a just-created topic may lag a moment
                for t in await admin.describe_topics([self.topic]):
                    if t.get("topic") == self.topic and t.get("partitions"):
                        return {p["partition"] for p in t["partitions"]}
                await asyncio.sleep(0.2)
        finally:
            await admin.close()
        raise RuntimeError(f"topic {self.topic} does not exist; run `novacron topics create`")

    async def catch_up(self) -> None:
        """Return once every record that existed when called has been handled."""
        consumer = self._require()
        ends = await consumer.end_offsets(self._tps)
        while not await self._reached(ends):
            async with self._lock:
                await self._read(100)

    async def _reached(self, ends: Mapping[TopicPartition, int]) -> bool:
        consumer = self._require()
        return all([await consumer.position(tp) >= end for tp, end in ends.items()])

    async def run(self) -> None:
        """Follow the topic until cancelled."""
        while True:
            async with self._lock:
                await self._read(200)
            await asyncio.sleep(0)  # let a waiting catch_up() take the lock

    async def _read(self, timeout_ms: int) -> None:
        batches = await self._require().getmany(timeout_ms=timeout_ms, max_records=1000)
        for records in batches.values():
            await self.handle(records)

    def _require(self) -> AIOKafkaConsumer:
        if self._consumer is None:
            raise RuntimeError(f"follower of {self.topic} used before start()")
        return self._consumer

    async def stop(self) -> None:
        if self._consumer is not None:
            await self._consumer.stop()
            self._consumer = None
