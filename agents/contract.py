"""The one agent contract: a decoded event in, the events it causes out, per-key state as bytes.

Every agent the generic host (`streams/host.py`) runs implements `Agent`. Agents are plain
objects: no Kafka, no I/O of their own. The host decodes each record once, calls `handle`,
publishes what it returns in one batch, and checkpoints the state `state_key` names through
`snapshot` / `restore` / `forget`.
An agent may also define `prepare(events)` (`Prepares`): the host calls it with each batch's
inputs of the agent's types before handling them one by one, for work the batch can share (the
gate evaluates all its decisions in one engine call); `handle` must emit exactly what it would
without it (`agents/checks.py` compares the two).

Errors follow `schemas/errors.py`: `DeadLetterError` for input the agent cannot use (the host
dead-letters the record with the reason), `RejectedError` for well-formed input it refuses (also
recorded in the dead-letter topic, kind `rejected`). An agent never drops bad input silently.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import ClassVar, NoReturn, Protocol, runtime_checkable

from schemas import Event
from schemas.errors import RejectedError

__all__ = ["Agent", "AgentBase", "Examples", "Prepares", "refuse"]

class _Stateful(Protocol):
    """What every agent shares, whatever the shape of its `handle`."""

    @property
    def name(self) -> str:
        """Unique name: the metric label and the namespace of its keys in the state topic."""
        ...

    @property
    def inputs(self) -> tuple[type[Event], ...]:
        """Event types it handles (the wiring table maps topics to these)."""
        ...

    def tick(self, now: datetime) -> list[Event]:
        """Periodic work (expiry, stale findings); the keys of the events it returns are saved."""
        ...

    def state_key(self, event: Event) -> str | None:
        """The per-key state an input touches (None: none), so the host can checkpoint it."""
        ...

    def snapshot(self, key: str) -> bytes | None:
        """The state of one key as bytes (None when the agent holds nothing for it)."""
        ...

    def restore(self, key: str, blob: bytes) -> None:
        """Resume one key from `snapshot()` bytes; DecodeError when they are unusable."""
        ...

    def forget(self, key: str) -> None:
        """Drop one key's state (its partition moved to another worker, or it was deleted)."""
        ...


@runtime_checkable
class Agent(_Stateful, Protocol):
    """A synchronous agent: one decoded event in, the events it emits out."""

    def handle(self, event: Event) -> list[Event]:
        """The events one input causes; raises DeadLetterError / RejectedError for bad input."""
        ...


@runtime_checkable
class Prepares(Protocol):
    """An agent with work a whole batch can share (optional beside `Agent`)."""

    def prepare(self, events: Sequence[Event]) -> None:
        """Called with a batch's inputs before their `handle` calls; never changes results."""
        ...


@dataclass(frozen=True)
class Examples:
    """Inputs the contract suite (`agents/checks.py`) feeds an agent."""

    inputs: Sequence[Event]
    """A stream in order: long enough to build state and emit something."""
    rejected: Sequence[Event] = ()
    """Inputs of declared types the agent must refuse with an error from the exception tree."""
    shared: Sequence[Event] = field(default_factory=tuple)
    """Events of followed compacted topics (e.g. baselines, policies) every instance has seen
    first."""
    measured: tuple[str, ...] = ()
    """Output fields that measure this run (a verdict's evaluation latency): the checks compare
    that they are there and their type, not their value."""


def refuse(agent: _Stateful, event: Event) -> NoReturn:
    """Raise RejectedError for an event the agent does not take (it never passes silently)."""
    taken = ", ".join(t.event_type for t in agent.inputs) or "nothing"
    raise RejectedError(f"agent {agent.name!r} takes {taken}, not {event.event_type}")


class AgentBase:
    """Defaults for a stateless agent: override `handle`, and the state methods if it keeps any.

    A new agent is this class plus one row in `streams/wiring.py` (docs/CONTRIBUTING.md).
    """

    name: ClassVar[str] = "agent"
    inputs: ClassVar[tuple[type[Event], ...]] = ()

    def handle(self, event: Event) -> list[Event]:
        refuse(self, event)

    def tick(self, now: datetime) -> list[Event]:
        return []

    def state_key(self, event: Event) -> str | None:
        return None

    def snapshot(self, key: str) -> bytes | None:
        return None

    def restore(self, key: str, blob: bytes) -> None:
        return None

    def forget(self, key: str) -> None:
        return None
