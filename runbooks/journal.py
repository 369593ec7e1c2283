"""The execution journal: a durable record of started / finished steps per action id.

The engine awaits `record(action_id, step_id, "started")` *before* a step's side effect starts and
`finished` / `failed` / `compensated` after it, plus workflow-level `started` / `finished` under the
step id `WORKFLOW`. Replaying the journal tells a restarted worker what already happened.
"""

from __future__ import annotations

import json
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Protocol

__all__ = [
    "WORKFLOW",
    "FileJournal",
    "InMemoryJournal",
    "Journal",
    "JournalEntry",
    "JournalState",
]

WORKFLOW = "*"
"""Step id of workflow-level records."""
JournalState = Literal["started", "finished", "failed", "compensated"]
_STATES = frozenset({"started", "finished", "failed", "compensated"})


@dataclass
class JournalEntry:
    """What the journal knows about one action id."""

    action_id: str
    workflow: str | None = None
    """Workflow-level state: None, started or finished (finished = never run again)."""
    steps: dict[str, str] = field(default_factory=dict)
    """Last state of each step id (compensations appear as `<id>.compensate`)."""
    finished_order: list[str] = field(default_factory=list)
    """Step ids in the order they finished (compensation runs in reverse)."""

    def apply(self, step_id: str, state: str) -> None:
        """Fold one record into the entry."""
        if step_id == WORKFLOW:
            self.workflow = state
            return
        self.steps[step_id] = state
        if state == "finished" and step_id not in self.finished_order:
            self.finished_order.append(step_id)

    @property
    def done(self) -> bool:
        """The workflow ran to its end (succeeded, failed or compensated)."""
        return self.workflow == "finished"


class Journal(Protocol):
    """Durable per-action step log; `record` returns only once the record is durable."""

    async def get(self, action_id: str) -> JournalEntry | None:
        """Everything recorded for an action id, or None when it never started."""
        ...

    async def record(self, action_id: str, step_id: str, state: JournalState) -> None:
        """Append one state change; durable when the await returns."""
        ...


class InMemoryJournal:
    """A journal in a dict (tests, benchmarks, dry runs); `records` keeps every call in order."""

    def __init__(self) -> None:
        self.entries: dict[str, JournalEntry] = {}
        self.records: list[tuple[str, str, str]] = []

    async def get(self, action_id: str) -> JournalEntry | None:
        return self.entries.get(action_id)

    async def record(self, action_id: str, step_id: str, state: JournalState) -> None:
        if state not in _STATES:
            raise ValueError(f"unknown journal state {state!r}")
        self.records.append((action_id, step_id, state))
        self.entries.setdefault(action_id, JournalEntry(action_id)).apply(step_id, state)


class FileJournal(InMemoryJournal):
    """Append-only JSON lines with fsync per record, replayed on open; one process at a time.

    The write and fsync happen synchronously on the event loop thread on purpose: the record must
    be on disk before the side effect starts, and parallel steps must append in a defined order.
    """

    def __init__(self, path: Path, fsync: bool = True) -> None:
        super().__init__()
        self.path = path
        self.fsync = fsync
        self._lock = threading.Lock()
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.exists():
            self._replay()
        self._file = path.open("a", encoding="utf-8")

    def _replay(self) -> None:
        for line in self.path.read_text(encoding="utf-8").splitlines():
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                continue  # a torn last line from a crash mid-write: that record never happened
            super_record = (rec["a"], rec["s"], rec["st"])
            self.records.append(super_record)
            self.entries.setdefault(rec["a"], JournalEntry(rec["a"])).apply(rec["s"], rec["st"])

    async def record(self, action_id: str, step_id: str, state: JournalState) -> None:
        if state not in _STATES:
            raise ValueError(f"unknown journal state {state!r}")
        line = json.dumps({"a": action_id, "s": step_id, "st": state}, separators=(",", ":"))
        with self._lock:
            self._file.write(line + "\n")
            self._file.flush()
            if self.fsync:
                os.fsync(self._file.fileno())
        await super().record(action_id, step_id, state)

    def close(self) -> None:
        """Close the file."""
        self._file.close()
