"""Per-key agent state in one compacted topic per role: the store, its memory fake, the book.

Layout (Faust changelog style): a key's record goes to the state partition with the number of
the input partition its events come from, so a worker assigned input partition `p` reads exactly
state partition `p`. Record key `"{agent}/{key}"`, value the agent's `snapshot(key)` compressed
with zlib, a tombstone when the agent forgot the key; headers carry the input positions the
snapshot covers, so records redelivered after a crash are not applied twice.
"""

from __future__ import annotations

import heapq
import logging
import time
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import orjson
from aiokafka import AIOKafkaProducer, ConsumerRecord

from schemas.errors import DecodeError
from streams import kafka_clients
from streams.reader import read_latest
from streams.settings import CheckpointPolicy, KafkaConfig

__all__ = ["CheckpointBook", "KafkaStateStore", "MemoryStateStore", "Position", "StateMeta",
           "StateRecord", "StateStore"]

log = logging.getLogger(__name__)
_POSITIONS, _EVENTS, _ENCODING = "novacron-positions", "novacron-events", "novacron-encoding"
Position = tuple[str, int, int]
"""(topic, partition, offset) of the input record an event came from."""


@dataclass(frozen=True)
class StateMeta:
    """What a snapshot covers: the last offset per input partition, and how many inputs."""

    partition: int
    positions: dict[str, int] = field(default_factory=dict)
    """`"topic/partition"` → the last offset folded into the snapshot."""
    events: int = 0

    def headers(self) -> list[tuple[str, bytes]]:
        return [(_POSITIONS, orjson.dumps(self.positions)), (_EVENTS, str(self.events).encode()),
                (_ENCODING, b"zlib")]

    @classmethod
    def from_headers(cls, partition: int, headers: Sequence[tuple[str, bytes]]) -> StateMeta:
        found = dict(headers)
        try:
            positions = orjson.loads(found[_POSITIONS])
            return cls(partition, {str(k): int(v) for k, v in positions.items()},
                       int(found[_EVENTS]))
        except (KeyError, ValueError, TypeError, AttributeError, orjson.JSONDecodeError) as exc:
            raise DecodeError(f"state record without valid headers: {exc}") from exc


@dataclass(frozen=True)
class StateRecord:
    """One key of one agent: its snapshot (None: forgotten) and what it covers."""

    agent: str
    key: str
    blob: bytes | None
    meta: StateMeta

    @property
    def record_key(self) -> bytes:
        return f"{self.agent}/{self.key}".encode()


class StateStore(Protocol):
    """The role's compacted state topic; `save` returns once every record is acknowledged."""

    async def load(self, partition: int) -> list[StateRecord]: ...
    async def save(self, records: Sequence[StateRecord]) -> None: ...
    async def close(self) -> None: ...


@dataclass
class MemoryStateStore:
    """In-process StateStore for tests: the latest record per partition and key."""

    partitions: dict[int, dict[bytes, StateRecord]] = field(default_factory=dict)
    saves: int = 0

    async def load(self, partition: int) -> list[StateRecord]:
        return [r for r in self.partitions.get(partition, {}).values() if r.blob is not None]

    async def save(self, records: Sequence[StateRecord]) -> None:
        for r in records:
            self.partitions.setdefault(r.meta.partition, {})[r.record_key] = r
        self.saves += 1

    async def close(self) -> None: ...


class KafkaStateStore:
    """The state topic on the broker: zlib-compressed snapshots, tombstones on forget."""

    def __init__(self, kafka: KafkaConfig, topic: str) -> None:
        self.kafka, self.topic = kafka, topic
        self._producer: AIOKafkaProducer | None = None

    async def save(self, records: Sequence[StateRecord]) -> None:
        if not records:
            return
        if (producer := self._producer) is None:
            producer = self._producer = kafka_clients.producer(
                self.kafka, acks="all", max_request_size=16 * 2**20)
            await producer.start()
        # zlib level 1: ~3 ms makes a 0.6 MB optimizer snapshot ~70 KB (Kafka's gzip is level 9,
        # ~10x slower; lz4/zstd need libraries we do not ship); the header says how to read it
        sends = [await producer.send(
            self.topic, None if r.blob is None else zlib.compress(r.blob, 1), key=r.record_key,
            partition=r.meta.partition, headers=r.meta.headers()) for r in records]
        for sent in sends:
            await sent

    async def load(self, partition: int) -> list[StateRecord]:
        records = [_decode(rec) for rec in await read_latest(self.kafka, self.topic, [partition])]
        return [r for r in records if r is not None]

    async def close(self) -> None:
        if self._producer is not None:
            await self._producer.stop()
            self._producer = None


def _decode(rec: ConsumerRecord) -> StateRecord | None:
    agent, _, key = rec.key.decode("utf-8", "replace").partition("/")
    if not key:  # not an `{agent}/{key}` record
        return None
    try:
        meta = StateMeta.from_headers(rec.partition, rec.headers)
        return StateRecord(agent, key, zlib.decompress(rec.value), meta)
    except (DecodeError, zlib.error) as exc:  # start that key cold rather than stop the role
        log.warning("ignoring state of %s/%s at offset %d: %s", agent, key, rec.offset, exc)
        return None


@dataclass
class _Tracked:
    home: int
    positions: dict[str, int] = field(default_factory=dict)
    restored: dict[str, int] = field(default_factory=dict)
    events: int = 0
    unsaved: int = 0
    saved_at: float = field(default_factory=lambda: time.monotonic())  # looked up per call
    urgent: bool = False
    """An input since the last save made the agent emit: save before the next commit."""
    stored: bool = False
    """The store holds a snapshot of this key (else forgetting it needs no tombstone)."""


class CheckpointBook:
    """Per key of one agent: where its inputs come from, what is saved, and when a save is due.

    Finding the keys due costs what changed since, not the number of keys: a key is filed as
    urgent or ready when an input makes it so, and keys with unsaved inputs wait in a heap by
    their last save, so those reaching the age are found from its top (a walk over every key
    per batch grew with the resources a worker holds: ~3 µs per 100 keys, per agent, per batch).
    """

    def __init__(self, every_events: int, max_age_seconds: float, on_output: bool = False,
                 max_per_batch: int | None = None) -> None:
        self.every_events, self.max_age_seconds = every_events, max_age_seconds
        self.on_output, self.max_per_batch = on_output, max_per_batch
        self._keys: dict[str, _Tracked] = {}
        self._urgent: dict[str, None] = {}
        """Keys whose inputs emitted since their last save (`on_output`), in order."""
        self._ready: dict[str, None] = {}
        """Keys that reached the count or the age since their last save, in order."""
        self._aging: list[tuple[float, str]] = []
        """(last save, key) of keys with unsaved inputs: a heap; entries of keys saved or
        dropped since are skipped when they reach its top."""

    @classmethod
    def of(cls, policy: CheckpointPolicy) -> CheckpointBook:
        return cls(policy.every_events or 1, policy.max_age_seconds or 60.0,
                   bool(policy.on_output), policy.max_per_batch)

    def replayed(self, key: str, position: Position) -> bool:
        """True when the restored snapshot already holds this input (redelivered after a crash)."""
        t = self._keys.get(key)
        topic, partition, offset = position
        return t is not None and offset <= t.restored.get(f"{topic}/{partition}", -1)

    def touched(self, key: str, position: Position) -> None:
        topic, partition, offset = position
        t = self._keys.get(key)
        if t is None:
            t = self._keys[key] = _Tracked(partition)
        t.positions[f"{topic}/{partition}"] = offset
        t.events += 1
        self._count(key, t)

    def emitted(self, key: str) -> None:
        """Handling an input of this key emitted events: with `on_output`, save it now."""
        if self.on_output and key in self._keys:
            self._keys[key].urgent = True
            self._urgent[key] = None

    def changed(self, key: str) -> None:
        """A key changed without an input (an agent's tick): save it like any other change."""
        t = self._keys.get(key)
        if t is not None:
            self._count(key, t)

    def _count(self, key: str, t: _Tracked) -> None:
        t.unsaved += 1
        if t.unsaved == 1:
            heapq.heappush(self._aging, (t.saved_at, key))
        if t.unsaved == self.every_events:
            self._ready[key] = None

    def settle(self, partitions: set[int]) -> None:
        """Everything handled so far in these partitions is saved: a redelivery is a replay."""
        for t in self._keys.values():
            if t.home in partitions:
                t.restored = dict(t.positions)

    def restored(self, key: str, meta: StateMeta) -> None:
        self._forget(key)
        self._keys[key] = _Tracked(meta.partition, dict(meta.positions), dict(meta.positions),
                                   meta.events, stored=True)

    def due(self, now: float, *, force: bool = False) -> list[str]:
        """Keys to save now: those whose inputs emitted (`on_output`), then those that reached
        the count or the age, at most `max_per_batch` of them, the longest unsaved first (every
        key with unsaved inputs if forced)."""
        keys = self._keys
        if force:
            return [k for k, t in keys.items() if t.unsaved]
        self._age(now)
        urgent = [k for k in self._urgent if keys[k].unsaved]
        ready = [k for k in self._ready if not keys[k].urgent]
        if self.max_per_batch is not None and len(ready) > self.max_per_batch:
            ready = sorted(ready, key=lambda k: keys[k].saved_at)[:self.max_per_batch]
        return urgent + ready

    def _age(self, now: float) -> None:
        """File the keys whose last save is at least the age ago (and that have unsaved inputs)
        as ready."""
        aging, age = self._aging, self.max_age_seconds
        while aging and now - aging[0][0] >= age:
            saved_at, key = heapq.heappop(aging)
            t = self._keys.get(key)
            if t is not None and t.unsaved and t.saved_at == saved_at:
                self._ready[key] = None

    def unsaved(self, partitions: set[int]) -> list[str]:
        return [k for k, t in self._keys.items() if t.unsaved and t.home in partitions]

    def saved(self, key: str, now: float, *, stored: bool = True) -> None:
        """The key's snapshot (`stored`) or its absence is now what the store holds."""
        t = self._keys[key]
        t.unsaved, t.saved_at, t.urgent, t.stored = 0, now, False, stored
        self._urgent.pop(key, None)
        self._ready.pop(key, None)

    def home(self, key: str) -> int | None:
        """The partition a key's inputs come from (None: not tracked here)."""
        t = self._keys.get(key)
        return None if t is None else t.home

    def stored(self, key: str) -> bool:
        """The store holds a snapshot of this key (restored here or saved since)."""
        return self._keys[key].stored

    def meta(self, key: str) -> StateMeta:
        t = self._keys[key]
        return StateMeta(t.home, dict(t.positions), t.events)

    def drop_partitions(self, partitions: set[int]) -> list[str]:
        gone = [k for k, t in self._keys.items() if t.home in partitions]
        for k in gone:
            self._forget(k)
        return gone

    def _forget(self, key: str) -> None:
        """Drop a key and its filing (its heap entry is skipped when it reaches the top)."""
        self._keys.pop(key, None)
        self._urgent.pop(key, None)
        self._ready.pop(key, None)

    def keys(self) -> Iterable[str]:
        return list(self._keys)

    def __contains__(self, key: object) -> bool:
        return key in self._keys

    def __len__(self) -> int:
        return len(self._keys)
