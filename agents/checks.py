"""Contract checks every agent in the wiring table must pass (as models/checks.py for models).

Each check takes `make` (a fresh agent over a given SharedState) and the agent's `Examples`.
Event ids and `utc_now()` are pinned while an agent runs, so two runs compare exactly; nothing
is normalised away but the fields the examples declare `measured` (wall-time latencies), whose
presence and type are compared.
"""

from __future__ import annotations

import contextlib
import random
import uuid
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from typing import Any
from unittest import mock

from agents.contract import Agent, Examples, Prepares
from agents.shared import SharedState
from schemas import Event
from schemas import envelope as _envelope
from schemas.errors import DeadLetterError, DecodeError, RejectedError

__all__ = [
    "CHECKS",
    "Make",
    "check_bad_input",
    "check_deterministic",
    "check_forget",
    "check_garbled_state",
    "check_no_input_mutation",
    "check_prepare_changes_nothing",
    "check_snapshot_restore",
    "frozen_ids_and_clock",
    "yield_checks",
]

Make = Callable[[SharedState], Agent]
FIXED_NOW = datetime(2030, 1, 1, tzinfo=UTC)


class _Unexpected(Event):
    """An event type no agent declares."""

    event_type = "Unexpected"


@contextlib.contextmanager
def frozen_ids_and_clock(seed: int, now: datetime = FIXED_NOW) -> Iterator[None]:
    """Seeded event ids and a fixed `utc_now()` for every event created inside."""
    rng = random.Random(seed)

    class _Clock(datetime):
        @classmethod
        def now(cls, tz: Any = None) -> Any:  # the signature datetime.now has
            return now

    def ids() -> str:
        return str(uuid.UUID(int=rng.getrandbits(128), version=4))

    with mock.patch.object(_envelope, "new_event_id", ids), mock.patch.object(
            _envelope, "datetime", _Clock):
        yield


def _fresh(make: Make, examples: Examples) -> Agent:
    shared = SharedState()
    for event in examples.shared:
        shared.observe(event)
    return make(shared)


def _run(agent: Agent, events: Sequence[Event], seed: int, measured: Sequence[str] = ()
         ) -> list[dict[str, Any]]:
    with frozen_ids_and_clock(seed):
        out = [{"type": o.event_type, **o.model_dump(mode="json")}
               for e in events for o in agent.handle(e)]
    for row in out:
        for name in measured:
            if name in row:
                row[name] = type(row[name]).__name__
    return out


def check_deterministic(make: Make, examples: Examples) -> None:
    """Two fresh agents fed the same inputs emit the same events (and emit something)."""
    first = _run(_fresh(make, examples), examples.inputs, 0, examples.measured)
    second = _run(_fresh(make, examples), examples.inputs, 0, examples.measured)
    assert first, "the examples make the agent emit nothing: they test too little"
    assert first == second, "two runs over the same inputs emitted different events"


def check_snapshot_restore(make: Make, examples: Examples) -> None:
    """An agent restored from snapshots of the keys it touched behaves like the original."""
    half = len(examples.inputs) // 2
    head, tail = examples.inputs[:half], examples.inputs[half:]
    original = _fresh(make, examples)
    _run(original, head, 0)
    keys = {k for e in head if (k := original.state_key(e)) is not None}
    blobs = {k: blob for k in sorted(keys) if (blob := original.snapshot(k)) is not None}
    assert blobs or not keys, "keys were touched but none held state after the first half"
    restored = _fresh(make, examples)
    for key, blob in blobs.items():
        restored.restore(key, blob)
    expected = _run(original, tail, 1, examples.measured)
    assert expected, "the second half of the examples emits nothing: it tests too little"
    assert _run(restored, tail, 1, examples.measured) == expected, \
        "the restored agent diverged from the original"


def check_prepare_changes_nothing(make: Make, examples: Examples) -> None:
    """An agent that prepares a batch ahead (`Prepares`) emits what it emits without that."""
    plain, prepared = _fresh(make, examples), _fresh(make, examples)
    if not isinstance(prepared, Prepares):
        return
    with frozen_ids_and_clock(0):
        prepared.prepare(list(examples.inputs))
    assert _run(prepared, examples.inputs, 0, examples.measured) == _run(
        plain, examples.inputs, 0, examples.measured), "prepare changed what the agent emits"


def check_forget(make: Make, examples: Examples) -> None:
    """`forget(key)` drops the key: its snapshot is None afterwards, other keys are kept."""
    agent = _fresh(make, examples)
    _run(agent, examples.inputs, 0)
    keys = sorted({k for e in examples.inputs if (k := agent.state_key(e)) is not None})
    held = [k for k in keys if agent.snapshot(k) is not None]
    assert held or not keys, "keys were touched but none holds state after the examples"
    if not held:
        return  # a stateless agent: nothing to forget
    agent.forget(held[0])
    assert agent.snapshot(held[0]) is None, f"{held[0]} still has state after forget"
    assert all(agent.snapshot(k) is not None for k in held[1:]), "forget dropped other keys"


def check_bad_input(make: Make, examples: Examples) -> None:
    """Undeclared event types and the examples' bad inputs raise from the exception tree."""
    agent = _fresh(make, examples)
    for event in [_Unexpected(), *examples.rejected]:
        try:
            agent.handle(event)
        except (DeadLetterError, RejectedError):
            continue
        except Exception as exc:
            raise AssertionError(f"{event.event_type} raised {type(exc).__name__}, which is "
                                 "outside the exception tree (schemas/errors.py)") from exc
        raise AssertionError(f"{event.event_type} {event.event_id} passed silently")


def check_garbled_state(make: Make, examples: Examples) -> None:
    """Garbled snapshot bytes raise DecodeError (the host starts that key cold), never crash."""
    agent = _fresh(make, examples)
    key = next((k for e in examples.inputs if (k := agent.state_key(e)) is not None), "key")
    try:
        agent.restore(key, b"\x00 not a snapshot \xff")
    except DecodeError:
        return
    except Exception as exc:
        raise AssertionError(f"garbled state raised {type(exc).__name__}, not DecodeError"
                             ) from exc
    assert agent.snapshot(key) is None, "garbled state was accepted as state"


def check_no_input_mutation(make: Make, examples: Examples) -> None:
    """Handling leaves every input exactly as it was (events are shared by several agents)."""
    agent = _fresh(make, examples)
    for event in examples.inputs:
        before = event.model_dump()
        with frozen_ids_and_clock(0):
            agent.handle(event)
        assert event.model_dump() == before, f"{agent.name} mutated {event.event_id}"


CHECKS: tuple[Callable[[Make, Examples], None], ...] = (
    check_deterministic,
    check_snapshot_restore,
    check_forget,
    check_bad_input,
    check_garbled_state,
    check_prepare_changes_nothing,
    check_no_input_mutation,
)


def yield_checks(agent: Agent) -> Iterator[Callable[[Make, Examples], None]]:
    """Every check that applies to an agent (all of them, today)."""
    del agent
    yield from CHECKS
