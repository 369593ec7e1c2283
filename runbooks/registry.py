"""The runbook registry: runbooks on the compacted `runbooks` topic, checked on the way in.

A record is keyed by runbook id; its value is a `RunbookRecord` (the YAML text and the content
hash of the parsed runbook); a tombstone withdraws it, and the shipped file of the same id (if
any) serves again. Gate and executor both fold the topic into their `Library`, and both recompute
the content hash from the text: a record whose text does not parse to the hash it claims is
refused, so what the gate approves by hash (runbooks/resolve.py) is exactly what the executor
runs, whoever wrote the record (gitops, the control API, the CLI).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from runbooks.loader import LIMITS, LoadLimits, load_text
from runbooks.model import Runbook
from runbooks.model import ValidationError as RunbookInvalid
from schemas.envelope import utc_now
from schemas.errors import DecodeError, RejectedError, SchemaViolation

__all__ = ["RunbookRecord", "RunbookStore", "parse_record", "runbook_record"]

Origin = Literal["git", "api", "cli"]


class RunbookRecord(BaseModel):
    """The value of one `runbooks` topic record."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    runbook_id: str = Field(min_length=1, max_length=128)
    """The runbook's `metadata.id` (also the record key)."""
    yaml: str = Field(min_length=1, max_length=1_048_576)
    """The runbook file, as written."""
    content_hash: str = Field(min_length=64, max_length=64)
    """SHA-256 of the parsed runbook's canonical JSON (`Runbook.content_hash`)."""
    author: str = Field(default="unknown", max_length=256)
    """Who published this version."""
    origin: Origin = "api"
    """Where it came from: a git sync, the control API or the CLI."""
    revision: str | None = Field(default=None, max_length=128)
    """The git commit it was read at, when it came from git."""
    updated_at: datetime = Field(default_factory=utc_now)
    """When it was published."""

    def encode(self) -> tuple[bytes, bytes]:
        """The topic record: key = runbook id, value = this record as JSON."""
        return self.runbook_id.encode(), self.model_dump_json().encode()


def runbook_record(text: str, *, author: str, origin: Origin, revision: str | None = None,
                   limits: LoadLimits = LIMITS, source: str = "<runbook>") -> RunbookRecord:
    """A record for a runbook's YAML; runbooks.model.ValidationError when it does not load."""
    book = load_text(text, source, limits)
    return RunbookRecord(runbook_id=book.id, yaml=text, content_hash=book.content_hash,
                         author=author, origin=origin, revision=revision)


def parse_record(key: bytes | None, value: bytes, limits: LoadLimits = LIMITS
                 ) -> tuple[RunbookRecord, Runbook]:
    """The record and its runbook; DecodeError/SchemaViolation/RejectedError when unusable."""
    try:
        record = RunbookRecord.model_validate(orjson.loads(value))
    except orjson.JSONDecodeError as exc:
        raise DecodeError(f"runbook record is not JSON: {exc}") from exc
    except ValidationError as exc:
        raise SchemaViolation(f"not a runbook record: {exc.errors()[0]['msg']}") from exc
    if key is not None and key.decode("utf-8", "replace") != record.runbook_id:
        raise RejectedError(f"runbook {record.runbook_id} published under key {key!r}")
    try:
        book = load_text(record.yaml, f"runbooks/{record.runbook_id}", limits)
    except RunbookInvalid as exc:
        raise RejectedError(f"runbook {record.runbook_id}: {'; '.join(exc.problems[:3])}"
                            ) from exc
    if book.id != record.runbook_id:
        raise RejectedError(f"record {record.runbook_id} holds runbook {book.id}")
    if book.content_hash != record.content_hash:
        raise RejectedError(f"runbook {record.runbook_id}: content hash "
                            f"{record.content_hash[:12]}… does not match its text "
                            f"({book.content_hash[:12]}…): tampered or written by another version")
    return record, book


class RunbookStore:
    """The folded topic: the latest accepted record and runbook per id."""

    def __init__(self, on_change: Callable[[str, Runbook | None], None] | None = None) -> None:
        self._items: dict[str, tuple[RunbookRecord, Runbook]] = {}
        self.on_change = on_change
        """Called with (id, runbook) on every change, (id, None) on a withdrawal."""

    def apply(self, key: bytes | None, value: bytes | None) -> None:
        """Fold one record; raises (and changes nothing) when it is unusable."""
        if value is None:
            rid = (key or b"").decode("utf-8", "replace")
            if self._items.pop(rid, None) is not None and self.on_change is not None:
                self.on_change(rid, None)
            return
        record, book = parse_record(key, value)
        self._items[record.runbook_id] = (record, book)
        if self.on_change is not None:
            self.on_change(record.runbook_id, book)

    def get(self, runbook_id: str) -> tuple[RunbookRecord, Runbook] | None:
        """The record and runbook of an id, None when the registry does not hold it."""
        return self._items.get(runbook_id)

    def records(self) -> list[RunbookRecord]:
        """Every record, by id."""
        return [r for _, (r, _) in sorted(self._items.items())]

    def __iter__(self) -> Iterator[tuple[RunbookRecord, Runbook]]:
        return iter(list(self._items.values()))

    def __len__(self) -> int:
        return len(self._items)

    def summary(self, runbook_id: str) -> dict[str, Any]:
        """JSON view of one record (the YAML included)."""
        found = self._items.get(runbook_id)
        if found is None:
            raise KeyError(runbook_id)
        return found[0].model_dump(mode="json")
