"""The one topic reader without a broker: read to the end, latest per key, follow, partitions."""

from __future__ import annotations

import asyncio

import pytest
from aiokafka import ConsumerRecord

from schemas.errors import NonRetryableError
from streams.reader import Latest, MemoryLog, TopicReader, read_latest, read_to_end

T = "t.compacted"


def _log(partitions: int = 1) -> MemoryLog:
    log = MemoryLog()
    log.topics[T] = partitions
    return log


def _kv(records: list[ConsumerRecord]) -> list[tuple[bytes | None, bytes | None]]:
    return [(r.key, r.value) for r in records]


async def test_read_to_end_returns_every_record_in_offset_order() -> None:
    log = _log()
    for i in range(3):
        log.append(T, b"k", str(i).encode())
    log.append(T, b"k", None)
    expected = [(b"k", b"0"), (b"k", b"1"), (b"k", b"2"), (b"k", None)]
    assert _kv(await read_to_end(log, T)) == expected


async def test_latest_keeps_the_last_value_per_key_and_tombstones_delete() -> None:
    log = _log(partitions=2)
    log.append(T, b"a", b"a1")
    log.append(T, b"b", b"b1")
    log.append(T, b"a", b"a2")
    log.append(T, b"b", None)  # b is deleted
    log.append(T, None, b"no key")  # nothing to compact it under: ignored
    log.append(T, b"c", b"c1", partition=1)
    assert _kv(await read_latest(log, T)) == [(b"a", b"a2"), (b"c", b"c1")]


async def test_a_compacted_log_reads_to_the_same_latest_as_the_full_one() -> None:
    log = _log()
    for i in range(50):
        log.append(T, f"k{i % 7}".encode(), None if i % 11 == 0 else str(i).encode())
    full = _kv(await read_latest(log, T))
    log.compact(T)  # offsets keep their gaps; the reader still stops at the end offset
    assert _kv(await read_latest(log, T)) == full
    assert len(await read_to_end(log, T)) == len(full)


async def test_a_rewritten_key_moves_to_its_new_offset() -> None:
    latest = Latest()
    log = _log()
    latest.add([log.append(T, b"a", b"1"), log.append(T, b"b", b"1"), log.append(T, b"a", b"2")])
    assert [r.key for r in latest.records()] == [b"b", b"a"]
    assert len(latest) == 2


async def test_catch_up_reads_past_one_fetch_and_every_record_once() -> None:
    log = _log()
    for i in range(2_500):  # more than one getmany (max_records=1000)
        log.append(T, str(i).encode(), b"v")
    seen: list[ConsumerRecord] = []

    async def keep(records: list[ConsumerRecord]) -> None:
        seen.extend(records)
        if len(seen) == 1_000:  # written while catching up: the next catch_up's
            log.append(T, b"late", b"v")  # this or the next catch_up hands it over, once

    reader = TopicReader(log, T)
    await reader.start()
    assert await reader.catch_up(keep) >= 2_500
    await reader.catch_up(keep)
    assert await reader.catch_up(keep) == 0
    await reader.stop()
    assert [r.offset for r in seen] == list(range(2_501))


async def test_follow_hands_over_records_written_after_the_catch_up() -> None:
    log = _log()
    log.append(T, b"a", b"1")
    reader = TopicReader(log, T)
    await reader.start()
    seen: list[bytes | None] = []
    late = asyncio.Event()

    async def keep(records: list[ConsumerRecord]) -> None:
        seen.extend(r.value for r in records)
        if b"2" in seen:
            late.set()

    await reader.catch_up(keep)
    following = asyncio.create_task(reader.follow(keep, timeout_ms=5))
    log.append(T, b"a", b"2")
    await asyncio.wait_for(late.wait(), 10)
    following.cancel()
    await asyncio.gather(following, return_exceptions=True)
    await reader.stop()
    assert seen == [b"1", b"2"]


async def test_from_the_end_skips_what_was_there_and_some_partitions_only() -> None:
    log = _log(partitions=3)
    log.append(T, b"old", b"v", partition=1)
    reader = TopicReader(log, T, partitions=[1], from_start=False)
    await reader.start()
    log.append(T, b"new", b"v", partition=1)
    log.append(T, b"other", b"v", partition=2)
    latest = Latest()
    await reader.catch_up(latest)
    await reader.stop()
    assert [r.key for r in latest.records()] == [b"new"]
    assert _kv(await read_to_end(log, T, [2])) == [(b"other", b"v")]


async def test_missing_topics_and_partitions_are_refused() -> None:
    log = _log(partitions=2)
    with pytest.raises(NonRetryableError, match="does not exist"):
        await read_to_end(log, "t.nope")
    with pytest.raises(NonRetryableError, match="no partition"):
        await read_to_end(log, T, [5])
    with pytest.raises(RuntimeError, match="before start"):
        await TopicReader(log, T).catch_up(Latest())


async def test_since_starts_at_the_first_record_of_that_time_per_partition() -> None:
    log = _log(partitions=2)
    for ts in (100, 200, 300):
        log.append(T, b"p0", str(ts).encode(), timestamp=ts)
    log.append(T, b"p1", b"50", partition=1, timestamp=50)  # nothing that recent: none of it
    reader = TopicReader(log, T, since_ms=200)
    await reader.start()
    seen: list[ConsumerRecord] = []

    async def keep(records: list[ConsumerRecord]) -> None:
        seen.extend(records)

    await reader.catch_up(keep)
    log.append(T, b"p1", b"400", partition=1, timestamp=400)
    await reader.catch_up(keep)
    await reader.stop()
    assert [(r.partition, r.value) for r in seen] == [(0, b"200"), (0, b"300"), (1, b"400")]
