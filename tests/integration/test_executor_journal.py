"""KafkaJournal and KafkaApprovals on the real broker: replay, what compaction keeps, partitions."""

from __future__ import annotations

import asyncio

import pytest
from aiokafka import AIOKafkaProducer

from runbooks.journal import WORKFLOW, InMemoryJournal, JournalState
from schemas import Approval
from schemas.codec import Codec
from streams.executor import KafkaApprovals
from streams.journal import JOURNAL_TOPIC, JournalRecord, KafkaJournal, fold
from streams.reader import read_to_end
from streams.settings import KafkaConfig

pytestmark = pytest.mark.kafka
CODEC = Codec()

# two actions: one that succeeded with a sub-workflow, one that failed at c and compensated a, b
SCRIPT: list[tuple[str, str, JournalState]] = [
    ("act-1", WORKFLOW, "started"), ("act-1", "a", "started"), ("act-1", "a", "finished"),
    ("act-1", "b", "started"), ("act-1/b", WORKFLOW, "started"), ("act-1/b", "x", "started"),
    ("act-1/b", "x", "finished"), ("act-1/b", WORKFLOW, "finished"), ("act-1", "b", "finished"),
    ("act-1", WORKFLOW, "finished"),
    ("act-2", WORKFLOW, "started"), ("act-2", "a", "started"), ("act-2", "b", "started"),
    ("act-2", "b", "finished"), ("act-2", "a", "finished"), ("act-2", "c", "started"),
    ("act-2", "c", "failed"), ("act-2", "a.compensate", "started"), ("act-2", "a", "compensated"),
    ("act-2", "b.compensate", "started"), ("act-2", "b", "compensated"),
]


async def _write(journal: KafkaJournal, script: list[tuple[str, str, JournalState]]) -> None:
    for aid, step, state in script:
        await journal.record(aid, step, state)


async def _raw(cfg: KafkaConfig) -> list[JournalRecord]:
    records = await read_to_end(cfg, cfg.topic(JOURNAL_TOPIC))
    return [JournalRecord.decode(r.value) for r in records if r.value]


def test_replay_rebuilds_what_was_recorded(kafka_cfg: KafkaConfig) -> None:
    topic = kafka_cfg.topic(JOURNAL_TOPIC)

    async def scenario() -> None:
        reference = InMemoryJournal()
        for aid, step, state in SCRIPT:
            await reference.record(aid, step, state)
        writer = KafkaJournal(kafka_cfg, topic)
        writer.bind("act-1", 1)
        writer.bind("act-2", 1)
        await _write(writer, SCRIPT)
        assert await writer.get("act-2") == reference.entries["act-2"]
        await writer.close()

        reader = KafkaJournal(kafka_cfg, topic)  # a restarted worker
        assert await reader.get("act-1") is None
        await reader.load([1])
        for aid in ("act-1", "act-1/b", "act-2"):
            assert await reader.get(aid) == reference.entries[aid], aid
        assert (await reader.get("act-2")).finished_order == ["b", "a"]  # type: ignore[union-attr]
        reader.keep_only([0])  # partition 1 moved to another worker: forget it
        assert await reader.get("act-1") is None and reader.loaded == set()
        await reader.close()

    asyncio.run(scenario())


def test_the_last_record_per_key_replays_like_the_full_log(kafka_cfg: KafkaConfig) -> None:
    # The broker's log cleaner is not run here: the last record per key (what compaction keeps)
    # is taken in Python from the records read back from the real topic.
    async def scenario() -> list[JournalRecord]:
        journal = KafkaJournal(kafka_cfg, kafka_cfg.topic(JOURNAL_TOPIC))
        journal.bind("act-1", 2)
        journal.bind("act-2", 3)
        await _write(journal, SCRIPT)
        await journal.close()
        return await _raw(kafka_cfg)

    records = asyncio.run(scenario())
    assert len(records) == len(SCRIPT)
    compacted: dict[bytes, JournalRecord] = {}
    for rec in records:  # what the log cleaner leaves: the last record of every key
        compacted[rec.key] = rec
    assert len(compacted) < len(records)
    assert fold(compacted.values()) == fold(records)
    entry = fold(compacted.values())["act-2"]
    assert entry.steps["a"] == "compensated" and entry.finished_order == ["b", "a"]


def test_partitions_that_share_a_journal_partition_stay_apart(kafka_cfg: KafkaConfig) -> None:
    # 4 journal partitions; actions partitions 1 and 5 both land in journal partition 1
    topic = kafka_cfg.topic(JOURNAL_TOPIC)

    async def scenario() -> None:
        writer = KafkaJournal(kafka_cfg, topic)
        writer.bind("mine", 1)
        writer.bind("theirs", 5)
        await writer.record("mine", WORKFLOW, "started")
        await writer.record("theirs", WORKFLOW, "started")
        await writer.close()
        reader = KafkaJournal(kafka_cfg, topic)
        await reader.load([1])
        assert await reader.get("mine") is not None
        assert await reader.get("theirs") is None
        await reader.load([5])
        assert (await reader.get("theirs")).workflow == "started"  # type: ignore[union-attr]
        with pytest.raises(ValueError, match="did not bind"):
            await reader.record("stranger", WORKFLOW, "started")
        await reader.close()

    asyncio.run(scenario())


def test_approvals_wake_waiters_and_remember_early_answers(kafka_cfg: KafkaConfig) -> None:
    def answer(request_id: str, status: str) -> Approval:
        return Approval(request_id=request_id, status=status, by="sre")  # type: ignore[arg-type]

    async def send(*approvals: Approval) -> None:
        producer = AIOKafkaProducer(bootstrap_servers=kafka_cfg.bootstrap, acks="all")
        await producer.start()
        try:
            for a in approvals:
                await producer.send_and_wait(kafka_cfg.topic("approvals"), CODEC.encode(a),
                                             key=a.key.encode())
        finally:
            await producer.stop()

    async def scenario() -> None:
        await send(answer("early", "approved"))  # before the worker started: still seen
        waiter = KafkaApprovals(kafka_cfg, kafka_cfg.topic("approvals"),
                                lambda vs: [CODEC.decode(v, Approval) for v in vs if v])
        reader = asyncio.create_task(waiter.run())
        try:
            assert await waiter("early", 30) == "approved"
            late = asyncio.create_task(waiter("late", 30))
            expired = asyncio.create_task(waiter("gone", 30))
            await asyncio.sleep(0.2)
            assert not late.done()
            await send(answer("late", "pending"), answer("late", "rejected"),
                       answer("gone", "expired"))
            assert await late == "rejected"
            assert await expired == "timeout"
            assert await waiter("never", 0.3) == "timeout"
        finally:
            reader.cancel()
            await asyncio.gather(reader, return_exceptions=True)

    asyncio.run(scenario())
