"""The generic agent host: decode each record once, dispatch, dead-letter, emit, checkpoint.

`HostCore` knows no Kafka client: the runner (`streams/runner.py`) feeds it raw records and
partition movements, and commits offsets after `handle` returns. Per batch:

1. decode each record once with the edge codec (`agents.ingest.Ingestor`: the sink's rules and
   the sink's position-derived `event_id` when the producer gave none); bad ones become
   DeadLetters with the reason;
2. hand each event to every agent of the role that takes its type; events an agent emits go to
   the role's other agents that take them in-process (unless the role also consumes their topic)
   and are published all the same;
3. send outputs and dead letters in one awaited batch, then save the keys whose checkpoint is due,
   so what the next owner of a partition restores never lags what was committed.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections import defaultdict, deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Protocol

from agents.contract import Agent, Prepares
from agents.ingest import Ingestor as EdgeDecoder
from agents.ingest import RawRecord
from schemas import DeadLetter, Event
from schemas.codec import Codec
from schemas.envelope import utc_now
from schemas.errors import DeadLetterError, DecodeError, RejectedError
from streams.host_metrics import HostMetrics
from streams.state import CheckpointBook, StateRecord, StateStore

__all__ = ["Companion", "HostCore", "Hosted", "InputTopic"]

log = logging.getLogger(__name__)
Emit = Callable[[list[Event]], Awaitable[object]]
INLINE_RECORDS = 100
"""Batches of at most this many records are handled on the event loop (HostConfig's default):
a hand-off to a worker thread costs ~0.1 ms, and while it runs the batch thread and the loop
(fetches, acknowledgements) take the GIL from each other; larger batches, a backlog or a
catch-up, still go to a thread (bench/README.md, 7 Dec fifth session)."""
MAX_HANDOFFS = 1_000  # events handed on in-process per input record: a cycle is a wiring bug


class Companion(Protocol):
    """Host-side extras of one agent (its own gauges, a model switch): no state of record."""

    def observe(self, events: Sequence[Event]) -> None: ...
    def tick(self) -> None: ...
    def forgotten(self, key: str) -> None: ...


@dataclass
class Hosted:
    """One agent in a role's host, with its checkpoint book and optional companion."""

    agent: Agent
    book: CheckpointBook
    companion: Companion | None = None


@dataclass(frozen=True)
class InputTopic:
    """A consumed topic: its full name and the event type its records decode to."""

    name: str
    event_type: type[Event]
    external: bool = False
    """Written by producers outside the project (the configured size limit applies)."""
    broadcast: bool = False
    """Read in full by every instance of the role, outside its consumer group (`handle_broadcast`):
    records keyed by something other than the state key, e.g. answers keyed by request."""
    needle: bytes | None = None
    """Only records whose raw value contains these bytes are decoded; the rest are for other
    roles (e.g. forecasts on `insights`, when the role's agents take anomalies only)."""


@dataclass
class _Batch:
    outputs: list[Event] = field(default_factory=list)
    letters: list[DeadLetter] = field(default_factory=list)
    by_agent: dict[str, list[Event]] = field(default_factory=lambda: defaultdict(list))
    homes: set[int] = field(default_factory=set)
    """Partitions of the keys broadcast inputs changed (relearned if the batch is not sent)."""


class HostCore:
    """The role's agents behind one decode → handle → emit → checkpoint pipeline."""

    def __init__(self, role: str, hosted: Sequence[Hosted], inputs: Sequence[InputTopic],
                 store: StateStore, emit: Emit, codec: Codec, metrics: HostMetrics,
                 before: Callable[[], Awaitable[None]] | None = None,
                 inline_records: int = INLINE_RECORDS) -> None:
        self.role, self.hosted, self.store, self.emit = role, list(hosted), store, emit
        self.inline_records = inline_records
        self.inputs = {t.name: t for t in inputs}
        self.metrics, self.before = metrics, before
        self.decoder = EdgeDecoder(codec, source=f"novacron.{role}")
        consumed = {t.event_type for t in inputs}
        self._takers: dict[type[Event], list[Hosted]] = defaultdict(list)
        for h in self.hosted:
            for kind in h.agent.inputs:
                self._takers[kind].append(h)
        self._handoff = set(self._takers) - consumed
        self._by_name = {h.agent.name: h for h in self.hosted}
        self._preparers = [h.agent for h in self.hosted if isinstance(h.agent, Prepares)]
        self.loaded: set[int] = set()
        self.owned: set[int] = set()
        """Partitions assigned here (a tick restores those a failed broadcast batch dropped)."""
        self.rewind: set[int] = set()
        """Partitions whose state was relearned: the runner re-reads them from their commits."""
        self._lock = asyncio.Lock()  # one batch, tick, save or rebalance at a time

    @asynccontextmanager
    async def exclusive(self) -> AsyncIterator[None]:
        """No batch, tick or rebalance runs inside (e.g. a control API reading agent state)."""
        async with self._lock:
            yield

    # --- the batch path ------------------------------------------------------------------------
    async def handle(self, records: Sequence[RawRecord]) -> list[Event]:
        """Handle a batch; return once its outputs and due checkpoints are acknowledged."""
        started = time.perf_counter()
        outputs = await self._batch(records, broadcast=False)
        self.metrics.batch_seconds.labels(self.role).observe(time.perf_counter() - started)
        return outputs

    async def handle_broadcast(self, records: Sequence[RawRecord]) -> list[Event]:
        """Handle records of a broadcast topic (read from its start by every instance, never
        committed); if their outputs are not sent, the keys they changed are relearned from
        their snapshots, and the caller reads the topic again."""
        return await self._batch(records, broadcast=True)

    async def _batch(self, records: Sequence[RawRecord], *, broadcast: bool) -> list[Event]:
        async with self._lock:
            if self.before is not None:
                await self.before()
            partitions = set() if broadcast else {r.partition for r in records}
            for p in sorted(partitions - self.loaded):
                await self._load(p)
            if len(records) <= self.inline_records:
                batch = self.process(records, broadcast=broadcast)
            else:  # long: the loop keeps serving heartbeats, metrics and the control API
                batch = await asyncio.to_thread(self.process, records, broadcast=broadcast)
            try:
                await self.emit([*batch.outputs, *batch.letters])
                await self._save(self._due(time.monotonic()), "count")
            except BaseException:  # unsent or unsaved: relearn what it changed from snapshots
                if broadcast:
                    self._relearn(batch.homes)
                else:
                    self._discard(partitions)  # the consumer reads them again from its commits
                raise
            self._observe(batch)
        return batch.outputs

    def _relearn(self, partitions: set[int]) -> None:
        """Drop partitions whose state changed without being sent; the runner re-reads them."""
        self._discard(partitions)
        self.rewind |= partitions

    def take_rewind(self) -> set[int]:
        """Partitions to re-read from their committed offsets (their state was relearned)."""
        rewind, self.rewind = self.rewind, set()
        return rewind

    def process(self, records: Iterable[RawRecord], *, broadcast: bool = False) -> _Batch:
        """Decode and dispatch (no I/O): the outputs and dead letters of a batch."""
        batch = _Batch()
        decoded: list[tuple[Event, RawRecord]] = []
        for raw in records:
            topic = self.inputs[raw.topic]
            if topic.needle is not None and (raw.value is None or topic.needle not in raw.value):
                continue  # for other roles: not decoded, not counted
            event = self.decoder.decode(raw, topic.event_type, topic.external)
            if isinstance(event, DeadLetter):
                self._letter(batch, event)
            else:
                decoded.append((event, raw))
        self._prepare([event for event, _ in decoded])
        for event, raw in decoded:
            self._dispatch(event, raw, batch, broadcast)
        return batch

    def _prepare(self, events: list[Event]) -> None:
        for agent in self._preparers:
            try:
                agent.prepare([e for e in events if isinstance(e, agent.inputs)])
            except Exception:  # only work saved ahead is lost: each input is handled alone
                log.exception("%s: prepare failed; handling the batch one by one", agent.name)

    def _dispatch(self, event: Event, raw: RawRecord, batch: _Batch, broadcast: bool = False
                  ) -> None:
        queue: deque[tuple[Event, str]] = deque([(event, "")])
        for _ in range(MAX_HANDOFFS):
            if not queue:
                return
            current, origin = queue.popleft()
            for h in self._takers.get(type(current), ()):
                if h.agent.name != origin:
                    out = self._call(h, current, raw, batch, handed=bool(origin),
                                     broadcast=broadcast)
                    queue.extend((o, h.agent.name) for o in out if type(o) in self._handoff)
        log.error("%s: more than %d in-process hand-offs for one record at %s[%d]@%d; the rest "
                  "is published only", self.role, MAX_HANDOFFS, raw.topic, raw.partition,
                  raw.offset)

    def _call(self, h: Hosted, event: Event, raw: RawRecord, batch: _Batch, *, handed: bool,
              broadcast: bool = False) -> list[Event]:
        agent, position = h.agent, (raw.topic, raw.partition, raw.offset)
        key: str | None = None
        try:
            key = agent.state_key(event)
            if broadcast and key is not None:  # not a position of the key's home partition
                self._changed(h, key, batch)
                key = None
            if key is not None and h.book.replayed(key, position):
                key = None  # already in the restored state: neither handled nor counted again
                self.metrics.events.labels(agent.name, event.event_type, "replayed").inc()
                return []
            out = agent.handle(event)
        except DeadLetterError as exc:
            return self._refused(h, event, raw, batch, exc.kind, exc.reason, handed)
        except RejectedError as exc:
            return self._refused(h, event, raw, batch, "rejected", str(exc), handed)
        except Exception as exc:  # an agent bug must not stop the role: record it with the input
            log.exception("%s failed on %s %s", agent.name, event.event_type, event.event_id)
            return self._refused(h, event, raw, batch, "processing",
                                 f"{type(exc).__name__}: {exc}", handed)
        finally:  # even a failed handle may have changed the key's state: save it as well
            if key is not None:
                h.book.touched(key, position)
        self.metrics.events.labels(agent.name, event.event_type, "handled").inc()
        if out and key is not None:
            h.book.emitted(key)
        batch.outputs.extend(out)
        batch.by_agent[agent.name].extend(out)
        return out

    def _changed(self, h: Hosted, key: str, batch: _Batch) -> None:
        h.book.changed(key)
        if (home := h.book.home(key)) is not None:
            batch.homes.add(home)

    def _refused(self, h: Hosted, event: Event, raw: RawRecord, batch: _Batch, kind: str,
                 reason: str, handed: bool) -> list[Event]:
        self.metrics.events.labels(h.agent.name, event.event_type, "dead-lettered").inc()
        # an event handed on in-process has no record of its own: the record that caused it is
        # dead-lettered, and the reason names the event the agent refused
        what = f" (on {event.event_type} {event.event_id})" if handed else ""
        letter_id = uuid.uuid5(uuid.NAMESPACE_URL, f"{raw.topic}/{raw.partition}/{raw.offset}/"
                                                   f"{h.agent.name}/{event.event_id}")
        self._letter(batch, self.decoder.dead_letter(
            raw, f"{h.agent.name}{what}: {reason}", kind, str(letter_id)))
        return []

    def _letter(self, batch: _Batch, letter: DeadLetter) -> None:
        self.metrics.dead_letters.labels(self.role, letter.source_topic, letter.error_kind).inc()
        log.info("dead-lettered %s[%d]@%d: %s", letter.source_topic, letter.partition,
                 letter.offset, letter.reason)
        batch.letters.append(letter)

    def _observe(self, batch: _Batch) -> None:
        for name, out in batch.by_agent.items():
            h = self._by_name[name]
            for e in out:
                self.metrics.emitted.labels(name, e.event_type).inc()
            if h.companion is not None:
                h.companion.observe(out)

    # --- time ----------------------------------------------------------------------------------
    async def tick(self) -> list[Event]:
        """Agent ticks, age checkpoints and companion upkeep (called every tick_seconds)."""
        async with self._lock:
            if self.before is not None:
                await self.before()
            for p in sorted(self.owned - self.loaded):  # dropped by an unsent batch
                await self._load(p)
            batch, now = _Batch(), utc_now()
            for h in self.hosted:
                out = h.agent.tick(now)
                for e in out:
                    if (key := h.agent.state_key(e)) is not None:
                        self._changed(h, key, batch)
                batch.outputs.extend(out)
                batch.by_agent[h.agent.name].extend(out)
            try:
                if batch.outputs:
                    await self.emit(batch.outputs)
            except BaseException:  # e.g. an expiry not sent: relearn it from the snapshot
                self._relearn(batch.homes)
                raise
            self._observe(batch)
            await self._save(self._due(time.monotonic()), "age")
            for h in self.hosted:
                self.metrics.keys.labels(h.agent.name).set(len(h.book))
                if h.companion is not None:
                    h.companion.tick()
            return batch.outputs

    # --- partitions and checkpoints ------------------------------------------------------------
    async def assigned(self, partitions: Iterable[int]) -> None:
        """Drop what moved away, restore what arrived, before any of its records is handled."""
        wanted = set(partitions)
        async with self._lock:
            self._discard(self.loaded - wanted)
            for p in sorted(wanted - self.loaded):
                await self._load(p)
            self.owned = wanted

    async def revoked(self, partitions: Iterable[int]) -> None:
        """Partitions may move: make their keys durable before the next owner reads them."""
        moving = set(partitions)
        async with self._lock:
            await self._save({h.agent.name: h.book.unsaved(moving) for h in self.hosted},
                             "revoke")
            for h in self.hosted:  # records of these partitions redelivered to us are not new
                h.book.settle(moving)

    async def shutdown(self) -> None:
        """Graceful stop: nothing handled since the last checkpoint is lost."""
        async with self._lock:
            await self._save(self._due(time.monotonic(), force=True), "shutdown")
        await self.store.close()

    def _due(self, now: float, *, force: bool = False) -> dict[str, list[str]]:
        return {h.agent.name: h.book.due(now, force=force) for h in self.hosted}

    async def _save(self, keys: dict[str, list[str]], reason: str) -> None:
        records = [StateRecord(name, k, self._by_name[name].agent.snapshot(k),
                               self._by_name[name].book.meta(k))
                   for name, ks in keys.items() for k in ks]
        # no snapshot of a key the store never held: nothing to delete, no tombstone to send
        sent = [r for r in records
                if r.blob is not None or self._by_name[r.agent].book.stored(r.key)]
        if sent:
            await self.store.save(sent)
        now = time.monotonic()
        for r in records:
            self._by_name[r.agent].book.saved(r.key, now, stored=r.blob is not None)
        for r in sent:
            self.metrics.checkpoints.labels(r.agent, reason).inc()

    async def _load(self, partition: int) -> None:
        restored = 0
        for r in await self.store.load(partition):
            h = self._by_name.get(r.agent)
            if h is None or r.blob is None:
                continue  # an agent no longer in this role: its state stays for a later one
            try:
                h.agent.restore(r.key, r.blob)
            except DecodeError as exc:  # e.g. written by an older model version: start cold
                log.warning("%s: state of %s not restored, starting cold: %s", r.agent, r.key,
                            exc)
                self.metrics.restores.labels(r.agent, "failed").inc()
                continue
            h.book.restored(r.key, r.meta)
            self.metrics.restores.labels(r.agent, "ok").inc()
            restored += 1
        self.loaded.add(partition)
        log.info("%s: partition %d restored, %d key(s)", self.role, partition, restored)

    def _discard(self, partitions: set[int]) -> None:
        for h in self.hosted:
            for key in h.book.drop_partitions(partitions):
                h.agent.forget(key)
                if h.companion is not None:
                    h.companion.forgotten(key)
        self.loaded -= partitions
