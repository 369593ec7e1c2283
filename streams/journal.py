"""The executor's journal on the compacted `executor-journal` topic, co-partitioned with `actions`.

Layout: one record per state change, key `"{action_id}/{step_id}"` (step ids never contain `/`,
runbook schema), value `{"a", "s", "st", "n", "p"}`: the action and step, the new state, the
step's position in the action's finish order (`n`, kept on every later record of that step) and
the `actions` partition the action came from (`p`). Compaction keeps only the latest record per
key, and `fold` rebuilds from the latest records exactly what folding every record would give,
so a compacted journal and a full one replay to the same `JournalEntry`s.

Several execute workers: an action's records go to journal partition `p % partitions`, where `p`
is its `actions` partition (Faust changelog style). A worker that is assigned `actions` partition
`p` replays journal partition `p % partitions` from the beginning to its end, keeping records whose
`p` matches, before it handles any action of `p`. Only `p`'s owner writes `p`'s records, so what it
read is complete; revoked partitions are dropped from memory because the next owner advances them.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from dataclasses import dataclass

import orjson
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from runbooks.journal import JournalEntry, JournalState
from schemas.errors import BackendUnavailable, DecodeError
from streams import kafka_clients
from streams.reader import read_latest
from streams.settings import KafkaConfig

__all__ = ["JOURNAL_TOPIC", "JournalRecord", "KafkaJournal", "fold"]

log = logging.getLogger(__name__)
JOURNAL_TOPIC = "executor-journal"
_STATES = frozenset({"started", "finished", "failed", "compensated"})


@dataclass(frozen=True)
class JournalRecord:
    """One state change of one step (or of the workflow, step id `*`)."""

    action_id: str
    step_id: str
    state: str
    finished_at: int | None
    """Position of the step in the action's finish order, once it finished (survives compaction)."""
    partition: int
    """The `actions` partition of the root action."""

    @property
    def key(self) -> bytes:
        return f"{self.action_id}/{self.step_id}".encode()

    def encode(self) -> bytes:
        return orjson.dumps({"a": self.action_id, "s": self.step_id, "st": self.state,
                             "n": self.finished_at, "p": self.partition})

    @classmethod
    def decode(cls, value: bytes) -> JournalRecord:
        try:
            d = orjson.loads(value)
            rec = cls(str(d["a"]), str(d["s"]), str(d["st"]), d.get("n"), int(d["p"]))
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            raise DecodeError(f"executor journal record: {exc}") from exc
        if rec.state not in _STATES:
            raise DecodeError(f"executor journal record with unknown state {rec.state!r}")
        return rec


def fold(records: Iterable[JournalRecord]) -> dict[str, JournalEntry]:
    """Entries from records in log order; only the latest record per key matters (compaction)."""
    latest: dict[tuple[str, str], JournalRecord] = {}
    for rec in records:
        latest[(rec.action_id, rec.step_id)] = rec
    by_action: dict[str, list[JournalRecord]] = {}
    for rec in latest.values():
        by_action.setdefault(rec.action_id, []).append(rec)
    return {aid: _entry(aid, recs) for aid, recs in by_action.items()}


def _entry(action_id: str, records: list[JournalRecord]) -> JournalEntry:
    entry = JournalEntry(action_id)
    # a step later compensated lost its `finished` record to compaction: put it back in order
    for rec in sorted((r for r in records if r.finished_at is not None),
                      key=lambda r: r.finished_at or 0):
        entry.apply(rec.step_id, "finished")
    for rec in records:
        entry.apply(rec.step_id, rec.state)
    return entry


class KafkaJournal:
    """The `Journal` protocol on Kafka: `record` returns once the broker acknowledged (acks=all).

    The host calls `bind(action_id, partition)` before running an action (sub-workflow ids
    `<action_id>/<step>` follow their root) and `load(partitions)` before handling a partition.
    """

    def __init__(self, kafka: KafkaConfig, topic: str) -> None:
        self.kafka, self.topic = kafka, topic
        self._producer: AIOKafkaProducer | None = None
        self._partitions = 0
        self._entries: dict[str, JournalEntry] = {}
        self._owner: dict[str, int] = {}  # action id → actions partition (to forget on revoke)
        self._bound: dict[str, int] = {}
        self._loaded: set[int] = set()
        self._load_lock = asyncio.Lock()

    # Journal protocol --------------------------------------------------------------------------
    async def get(self, action_id: str) -> JournalEntry | None:
        return self._entries.get(action_id)

    async def record(self, action_id: str, step_id: str, state: JournalState) -> None:
        if state not in _STATES:
            raise ValueError(f"unknown journal state {state!r}")
        partition = self._partition_of(action_id)
        entry = self._entries.get(action_id) or JournalEntry(action_id)
        order = entry.finished_order
        n = order.index(step_id) if step_id in order else (
            len(order) if state == "finished" else None)
        rec = JournalRecord(action_id, step_id, state, n, partition)
        producer = await self._ensure_producer()
        try:
            await producer.send_and_wait(self.topic, rec.encode(), key=rec.key,
                                         partition=partition % self._partitions)
        except KafkaError as exc:
            raise BackendUnavailable(f"executor journal write failed: {exc}") from exc
        # only a durable record counts: memory follows the broker, never leads it
        self._entries.setdefault(action_id, entry).apply(step_id, state)
        self._owner[action_id] = partition

    # partitions -----------------------------------------------------------------------------
    def bind(self, action_id: str, partition: int) -> None:
        """Records of this action (and its sub-workflows) belong to this `actions` partition."""
        self._bound[action_id] = partition

    def unbind(self, action_id: str) -> None:
        self._bound.pop(action_id, None)

    def _partition_of(self, action_id: str) -> int:
        aid = action_id
        while aid not in self._bound:
            if "/" not in aid:
                raise ValueError(f"journal record for {action_id!r}, which the host did not bind")
            aid = aid.rsplit("/", 1)[0]
        return self._bound[aid]

    async def load(self, partitions: Iterable[int]) -> None:
        """Replay the journal of these `actions` partitions (those not loaded yet) to its end."""
        async with self._load_lock:
            wanted = sorted(set(partitions) - self._loaded)
            if not wanted:
                return
            await self._ensure_producer()
            try:
                records = await self._read(wanted)
            except KafkaError as exc:
                raise BackendUnavailable(f"executor journal replay failed: {exc}") from exc
            for aid, entry in fold(records).items():
                self._entries[aid] = entry
            self._owner.update({r.action_id: r.partition for r in records})
            self._loaded.update(wanted)
            log.info("executor journal: partitions %s replayed, %d record(s)", wanted, len(records))

    def keep_only(self, partitions: Iterable[int]) -> None:
        """Forget partitions no longer ours: their next owner advances them."""
        keep = set(partitions)
        gone = {aid for aid, p in self._owner.items() if p not in keep}
        for aid in gone:
            self._entries.pop(aid, None)
            del self._owner[aid]
        self._loaded &= keep

    @property
    def loaded(self) -> set[int]:
        return set(self._loaded)

    # Kafka ----------------------------------------------------------------------------------
    async def _ensure_producer(self) -> AIOKafkaProducer:
        if self._producer is None:
            producer = kafka_clients.producer(self.kafka, acks="all", linger_ms=0)
            await producer.start()
            try:
                self._partitions = len(await producer.partitions_for(self.topic))
            except Exception:
                await producer.stop()
                raise
            self._producer = producer
        return self._producer

    async def _read(self, partitions: list[int]) -> list[JournalRecord]:
        wanted = set(partitions)
        out: list[JournalRecord] = []
        shared = {p % self._partitions for p in partitions}
        for rec in await read_latest(self.kafka, self.topic, shared):  # tombstones: pruned
            try:
                record = JournalRecord.decode(rec.value)
            except DecodeError as exc:
                log.warning("skipping executor journal record at %s: %s", rec.offset, exc)
                continue
            if record.partition in wanted:
                out.append(record)
        return out

    async def close(self) -> None:
        if self._producer is not None:
            await self._producer.stop()
            self._producer = None

