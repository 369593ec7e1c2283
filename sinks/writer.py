"""The history sink: buffer events, insert one batch per table, then hand back offsets to commit."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from schemas.envelope import Event
from schemas.errors import BackendUnavailable, RetryableError
from sinks.audit import AUDITED_TYPES, AuditChain, audit_entry_for
from sinks.backend import Backend
from sinks.columns import ColumnBlock, event_columns
from sinks.config import SinkConfig
from sinks.ddl import AUDIT_TABLE, quote, table_for

__all__ = ["BatchingSink", "SinkStats", "SinkStopped"]

TopicPartition = tuple[str, int]


class SinkStopped(RetryableError):
    """flush() gave up because stop() was called while the backend was down; nothing was lost."""


@dataclass
class SinkStats:
    """Counters for Prometheus (read them, do not write them)."""

    rows_inserted: int = 0
    """Rows inserted into event tables (audit rows not counted)."""
    batches: int = 0
    """Batches fully inserted."""
    failed_attempts: int = 0
    """Insert attempts that raised BackendUnavailable."""
    last_insert_seconds: float = 0.0
    """Wall time of the last successful batch insert (all tables)."""
    buffered: int = 0
    """Records waiting in the buffer."""
    last_error: str = ""
    """Message of the latest failed attempt (empty after a success)."""


@dataclass
class _Batch:
    blocks: dict[str, ColumnBlock] = field(default_factory=dict)
    """Event rows per table, column-wise."""
    rows: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    """Rows kept as dicts (the audit log)."""
    offsets: dict[TopicPartition, int] = field(default_factory=dict)
    count: int = 0
    started: float | None = None


class BatchingSink:
    """Pure batching around a Backend; the host decides when to call `flush` and commits offsets.

    Host loop (flush blocks, chDB calls are synchronous, so run it in a thread):
        sink.add(event, topic, partition, offset)            # per record
        if sink.due(time.monotonic()):
            offsets = await asyncio.to_thread(sink.flush)    # retries until inserted or stop()
            await consumer.commit(offsets)                   # only after flush returned
    Only one flush may run at a time; add() from the loop while it runs is safe (the batch being
    inserted was swapped out first).
    """

    def __init__(
        self,
        backend: Backend,
        database: str = "novacron",
        cfg: SinkConfig | None = None,
        *,
        audit: AuditChain | None = None,
        sleep: Callable[[float], Any] | None = None,
        clock: Callable[[], float] = time.monotonic,
        on_retry: Callable[[int, float, Exception], None] | None = None,
    ):
        self.backend = backend
        self.database = database
        self.cfg = cfg or SinkConfig()
        self.audit = audit
        self.stats = SinkStats()
        self._stop = threading.Event()
        self._guard = threading.Lock()  # add() on the loop may race a flush() in a worker thread
        # Default sleep waits on the stop event, so stop() interrupts a long backoff.
        self._sleep = sleep or self._stop.wait
        self._clock, self._on_retry = clock, on_retry
        self._batch = _Batch()
        self._tables: dict[str, str] = {}  # event type -> quoted db.table
        self._audit_table = f"{quote(database)}.{AUDIT_TABLE}"

    def add(self, event: Event, topic: str, partition: int, offset: int) -> None:
        """Buffer one event and remember its offset (the next offset to commit is offset + 1).

        All or nothing: if the event cannot be converted (its row or its audit entry raises),
        nothing is buffered and the exception reaches the caller, which dead-letters the record.
        """
        self.add_batch([event], topic, partition, [offset])

    def add_batch(
        self, events: Sequence[Event], topic: str, partition: int, offsets: Sequence[int]
    ) -> None:
        """Buffer events of one partition (`offsets[i]` is the offset of `events[i]`), column-wise.

        All or nothing for the whole batch: if one event cannot be converted, nothing is buffered
        and the exception reaches the caller, which adds the events one by one to find it.
        """
        if not events:
            return
        groups: dict[str, list[Event]] = {}
        for event in events:
            groups.setdefault(event.event_type, []).append(event)
        # the costly part, outside the lock
        converted = [(etype, event_columns(etype, group)) for etype, group in groups.items()]
        audited = self.audit is not None and not AUDITED_TYPES.keys().isdisjoint(groups)
        entries = [audit_entry_for(e) for e in events] if audited else []
        with self._guard:
            audit_rows = self._audit_rows(entries)  # first: if it raises, nothing is buffered
            batch = self._batch
            for etype, columns in converted:
                table = self._table(etype)
                block = batch.blocks.get(table)
                if block is None:
                    block = batch.blocks[table] = ColumnBlock(etype)
                block.extend(columns)
            if audit_rows:
                batch.rows.setdefault(self._audit_table, []).extend(audit_rows)
            if offsets:
                tp = (topic, partition)
                batch.offsets[tp] = max(batch.offsets.get(tp, -1), max(offsets) + 1)
            batch.count += len(events)
            if batch.started is None:
                batch.started = self._clock()
            self.stats.buffered = batch.count

    def add_columns(
        self, event_type: str, columns: dict[str, list[Any]], topic: str, partition: int,
        offsets: Sequence[int],
    ) -> None:
        """Buffer rows already converted (`event_columns` layout, e.g. from `sinks.fastpath`) of
        one partition; `offsets` are the offsets of every record they stand for. Only for types
        without audit entries (those need the events: use `add_batch`)."""
        if event_type in AUDITED_TYPES:
            raise ValueError(f"{event_type} is audited: its rows need the events (add_batch)")
        count = len(columns["payload"])
        fresh = ColumnBlock(event_type)
        if columns.keys() != set(fresh.names) or any(len(c) != count for c in columns.values()):
            raise ValueError(f"not the columns of {event_type}: {sorted(columns)}")  # none added
        if not count:
            return
        with self._guard:
            batch = self._batch
            table = self._table(event_type)
            block = batch.blocks.get(table)
            if block is None:
                block = batch.blocks[table] = fresh
            block.extend(columns)
            if offsets:
                tp = (topic, partition)
                batch.offsets[tp] = max(batch.offsets.get(tp, -1), max(offsets) + 1)
            batch.count += count
            if batch.started is None:
                batch.started = self._clock()
            self.stats.buffered = batch.count

    def _audit_rows(self, entries: list[dict[str, Any] | None]) -> list[dict[str, Any]]:
        """Advance the chain over the entries; on failure put it back where it was and raise."""
        chain = self.audit
        if chain is None:
            return []
        seq, head = chain.last_seq, chain.last_hash
        try:
            return [chain.append(**entry).as_dict() for entry in entries if entry]
        except BaseException:
            chain.last_seq, chain.last_hash = seq, head
            raise

    def _table(self, event_type: str) -> str:
        table = self._tables.get(event_type)
        if table is None:
            table = f"{quote(self.database)}.{quote(table_for(event_type))}"
            self._tables[event_type] = table
        return table

    def add_offset(self, topic: str, partition: int, offset: int) -> None:
        """Record an offset with no row (a record another agent handles), so it is committed too."""
        tp = (topic, partition)
        with self._guard:
            self._batch.offsets[tp] = max(self._batch.offsets.get(tp, -1), offset + 1)
            if self._batch.started is None:
                self._batch.started = self._clock()

    def __len__(self) -> int:
        return self._batch.count

    @property
    def empty(self) -> bool:
        """Nothing buffered: no rows, and no offsets waiting for the next commit."""
        return self._batch.started is None

    def due(self, now: float | None = None) -> bool:
        """True when the batch is full or `batch_seconds` passed since its first record."""
        batch = self._batch
        if batch.count >= self.cfg.batch_size:
            return True
        if batch.started is None:
            return False
        now = self._clock() if now is None else now
        return now - batch.started >= self.cfg.batch_seconds

    def flush(self) -> dict[TopicPartition, int]:
        """Insert the buffer (one INSERT per table) and return offsets to commit.

        Retries with exponential backoff while the backend is unavailable; offsets are returned
        only after every table's insert succeeded. A retry re-inserts the whole batch: tables
        deduplicate by event_id (audit rows by seq), so a partly inserted batch is harmless.
        Raises SinkStopped if stop() is called during an outage; the batch stays buffered.
        """
        return self.insert(self.detach())

    def detach(self) -> _Batch:
        """Take the buffered batch out, so `add` can go on while it is inserted."""
        with self._guard:
            batch, self._batch = self._batch, _Batch()
            self.stats.buffered = 0
        return batch

    def audit_rows(self, batch: _Batch) -> list[dict[str, Any]]:
        """The audit rows of a batch (to sign the chain head once they are inserted)."""
        return batch.rows.get(self._audit_table, [])

    def insert(self, batch: _Batch) -> dict[TopicPartition, int]:
        """Insert a detached batch (may run in a worker thread while `add` continues).

        On SinkStopped (or any error) the batch is put back in front of the buffer.
        """
        try:
            self._insert_with_retry(batch)
        except BaseException:
            self._restore(batch)
            raise
        return batch.offsets

    def _restore(self, batch: _Batch) -> None:
        # Put the failed batch back in front of anything added meanwhile; nothing is lost.
        with self._guard:
            self._merge_back(batch)

    def _merge_back(self, batch: _Batch) -> None:
        newer = self._batch
        for table, block in newer.blocks.items():
            if table in batch.blocks:
                batch.blocks[table].extend(block.columns)
            else:
                batch.blocks[table] = block
        for table, rows in newer.rows.items():
            batch.rows.setdefault(table, []).extend(rows)
        for tp, off in newer.offsets.items():
            batch.offsets[tp] = max(batch.offsets.get(tp, -1), off)
        batch.count += newer.count
        self._batch = batch
        self.stats.buffered = batch.count

    def _insert_with_retry(self, batch: _Batch) -> None:
        delay, attempt = self.cfg.retry_initial_seconds, 0
        while True:
            try:
                self._insert(batch)
                return
            except BackendUnavailable as exc:
                attempt += 1
                self.stats.failed_attempts += 1
                self.stats.last_error = str(exc)
                if self._on_retry is not None:
                    self._on_retry(attempt, delay, exc)
                if self._stop.is_set():
                    raise SinkStopped(f"sink stopped; {batch.count} records kept") from exc
                self._sleep(delay)
                delay = min(delay * 2, self.cfg.retry_max_seconds)

    def _insert(self, batch: _Batch) -> None:
        start = self._clock()
        for table, block in batch.blocks.items():
            self.backend.insert_columns(table, block)
        for table, rows in batch.rows.items():
            self.backend.insert_rows(table, rows)
        self.stats.last_insert_seconds = self._clock() - start
        self.stats.rows_inserted += batch.count
        self.stats.batches += 1 if batch.count else 0
        self.stats.last_error = ""

    def stop(self) -> None:
        """Make a flush that waits for the backend give up after its current attempt.

        Thread-safe; with the default sleep it also cuts the current backoff short.
        """
        self._stop.set()
