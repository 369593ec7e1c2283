"""The edge: decode each raw record once into a typed event, or a DeadLetter saying why not."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from schemas import DeadLetter, Event
from schemas.codec import Codec
from schemas.edge import EdgeContext
from schemas.errors import DeadLetterError

__all__ = [
    "DLQ_RAW_LIMIT",
    "INTERNAL_MAX_BYTES",
    "Ingestor",
    "RawRecord",
    "RecordLike",
    "raw_record",
    "record_event_id",
    "size_limit",
]

DLQ_RAW_LIMIT = 65_536
"""Bytes of the original value kept in a dead letter (the size is recorded in full)."""

INTERNAL_MAX_BYTES = 16 * 1_048_576
"""Size limit for topics our own agents write (the external limit guards producers' topics)."""

_RECORD_NS = uuid.UUID("1b671a64-40d5-491e-99b0-da01e8ef8ad9")


def size_limit(codec: Codec, external: bool) -> int:
    """The size limit of a topic: the configured one for producers' topics, a large one for
    topics our agents write (dead letters carry raw bytes). Every worker uses this rule."""
    return codec.max_bytes if external else max(INTERNAL_MAX_BYTES, codec.max_bytes)


def record_event_id(topic: str, partition: int, offset: int) -> str:
    """A deterministic id for a record position: replays after a crash deduplicate on it."""
    return str(uuid.uuid5(_RECORD_NS, f"{topic}/{partition}/{offset}"))


@dataclass(frozen=True, slots=True)
class RawRecord:
    """One Kafka record as the host hands it over (no Kafka types leak in)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    timestamp_ms: int | None = None
    """The record's Kafka timestamp: a dead letter of it carries this time, so every consumer
    that dead-letters the same record (ingest and the agent hosts) writes the same event."""


class RecordLike(Protocol):
    """The fields of a record `Ingestor.decode_batch` reads (RawRecord has them)."""

    @property
    def topic(self) -> str: ...
    @property
    def partition(self) -> int: ...
    @property
    def offset(self) -> int: ...
    @property
    def key(self) -> bytes | None: ...
    @property
    def value(self) -> bytes | None: ...


def raw_record(record: RecordLike) -> RawRecord:
    """The record as a RawRecord (itself if it is one)."""
    if isinstance(record, RawRecord):
        return record
    return RawRecord(record.topic, record.partition, record.offset, record.key, record.value)


class Ingestor:
    """Turns raw records of a known topic into events; bad input becomes a DeadLetter."""

    def __init__(self, codec: Codec, source: str = "novacron.ingest") -> None:
        self.codec = codec
        self.source = source

    def decode(self, record: RawRecord, expected: type[Event], external: bool = True) -> Event:
        """The event, or a DeadLetter describing why the record is not one.

        `external` topics (written by producers outside the project) get the configured size
        limit; internal ones get a large limit, since dead letters carry the raw bytes.
        """
        limit = size_limit(self.codec, external)

        def position_id() -> str:
            return record_event_id(record.topic, record.partition, record.offset)

        try:
            return self.codec.decode(record.value, expected, None, limit, position_id)
        except DeadLetterError as exc:
            return self.dead_letter(record, exc.reason, exc.kind, position_id())

    def decode_batch(
        self, records: Sequence[RecordLike], expected: type[Event], external: bool = True,
        edge: EdgeContext | None = None,
    ) -> list[Event]:
        """`[self.decode(r, expected, external) for r in records]`, validated as one batch.

        The records may be the host's own objects with RawRecord's fields (no copy per record);
        a dead letter is made from a RawRecord of the bad one. `edge` is the batch's pinned
        clock reading when another decoder shares it (`Codec.pinned_edge`).
        """
        limit = size_limit(self.codec, external)

        def position_id(i: int) -> str:
            record = records[i]
            return record_event_id(record.topic, record.partition, record.offset)

        decoded = self.codec.decode_batch(
            [r.value for r in records], expected, limit, position_id, edge
        )
        return [
            self.dead_letter(raw_record(records[i]), item.reason, item.kind, position_id(i))
            if isinstance(item, DeadLetterError) else item
            for i, item in enumerate(decoded)
        ]

    def dead_letter(self, record: RawRecord, reason: str, kind: str, event_id: str) -> DeadLetter:
        """A DeadLetter for a record (deterministic id: a replay does not duplicate it)."""
        raw = record.value or b""
        when = {} if record.timestamp_ms is None else {
            "event_time": datetime.fromtimestamp(record.timestamp_ms / 1000, UTC)}
        return DeadLetter(
            **when,
            event_id=event_id,
            source=self.source,
            source_topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            reason=reason[:8192],
            error_kind=kind,
            raw=raw[:DLQ_RAW_LIMIT],
            raw_size=len(raw),
            source_key=record.key.decode("utf-8", "replace")[:1024] if record.key else None,
        )
