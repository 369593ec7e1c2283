"""OffsetCommits: a batch's offset commit overlaps the next batch, one at a time, in order."""

from __future__ import annotations

import asyncio
import logging

import pytest
from aiokafka import TopicPartition
from aiokafka.errors import CommitFailedError, KafkaConnectionError

from streams.runner import OffsetCommits

TP = TopicPartition("novacron.metrics", 0)
pytestmark = pytest.mark.timeout(10)  # a commit awaited where it must not be hangs: fail instead


class _Broker:
    """A commit call that waits until the test lets it finish (or fail)."""

    def __init__(self) -> None:
        self.started: list[int] = []
        self.done: list[int] = []
        self.release: dict[int, asyncio.Future[Exception | None]] = {}

    async def commit(self, offsets: dict[TopicPartition, int]) -> None:
        offset = offsets[TP]
        self.started.append(offset)
        self.release[offset] = asyncio.get_running_loop().create_future()
        error = await self.release[offset]
        if error is not None:
            raise error
        self.done.append(offset)

    async def let(self, offset: int, error: Exception | None = None) -> None:
        while offset not in self.release:  # the commit task has not run yet
            await asyncio.sleep(0)
        self.release[offset].set_result(error)


async def test_the_next_batch_is_handled_while_the_last_commit_is_in_flight() -> None:
    broker, commits = _Broker(), OffsetCommits("learn")
    # returns at once (a start that waited for its commit would time out here)
    await asyncio.wait_for(commits.start(broker.commit, {TP: 10}), 1.0)
    await asyncio.sleep(0)
    assert broker.started == [10] and broker.done == [], "committing while the next batch runs"
    nxt = asyncio.create_task(commits.start(broker.commit, {TP: 20}))
    await asyncio.sleep(0.01)
    assert broker.started == [10], "the second commit waits for the first"
    await broker.let(10)
    await nxt
    await broker.let(20)
    await commits.settle()
    assert broker.done == [10, 20]


async def test_a_failed_commit_is_raised_by_the_next_start() -> None:
    broker, commits = _Broker(), OffsetCommits("learn")
    await commits.start(broker.commit, {TP: 10})
    await broker.let(10, KafkaConnectionError("broker gone"))
    with pytest.raises(KafkaConnectionError):
        await commits.start(broker.commit, {TP: 20})
    assert broker.started == [10], "nothing is committed past a failed commit"


async def test_a_commit_refused_by_a_rebalance_is_only_logged(
        caplog: pytest.LogCaptureFixture) -> None:
    broker, commits = _Broker(), OffsetCommits("learn")
    await commits.start(broker.commit, {TP: 10})
    await broker.let(10, CommitFailedError("rebalanced"))
    with caplog.at_level(logging.INFO, logger="streams.runner"):
        await commits.settle()
    assert "offsets not committed" in caplog.text


async def test_close_waits_for_the_commit_in_flight() -> None:
    broker, commits = _Broker(), OffsetCommits("learn")
    await commits.start(broker.commit, {TP: 10})
    closing = asyncio.create_task(commits.close())
    await asyncio.sleep(0.01)
    assert not closing.done()
    await broker.let(10)
    await closing
    assert broker.done == [10]


async def test_close_logs_a_failed_last_commit_instead_of_raising(
        caplog: pytest.LogCaptureFixture) -> None:
    broker, commits = _Broker(), OffsetCommits("learn")
    await commits.start(broker.commit, {TP: 10})
    await broker.let(10, KafkaConnectionError("broker gone"))
    with caplog.at_level(logging.WARNING, logger="streams.runner"):
        await commits.close()
    assert "last offset commit failed" in caplog.text
    await commits.close()  # nothing left in flight: a second close is a no-op


async def test_a_stop_while_settling_does_not_cancel_the_commit() -> None:
    broker, commits = _Broker(), OffsetCommits("learn")
    await commits.start(broker.commit, {TP: 10})
    loop = asyncio.create_task(commits.settle())  # the consumer loop, waiting for the commit
    await asyncio.sleep(0.01)
    loop.cancel()  # the worker stops
    with pytest.raises(asyncio.CancelledError):
        await loop
    await broker.let(10)
    await commits.close()
    assert broker.done == [10], "the commit landed although the loop was cancelled"
