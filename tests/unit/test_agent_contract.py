"""Every agent in the wiring table passes the contract checks of agents/checks.py."""

from __future__ import annotations

from collections.abc import Callable
from functools import cache

import pytest

from agents.checks import CHECKS, Make, frozen_ids_and_clock
from agents.contract import Agent, AgentBase, Examples
from agents.shared import SharedState
from schemas import Event, MetricSample
from schemas.errors import DecodeError
from streams.settings import Settings
from streams.wiring import WIRING, AgentContext, AgentRow
from tests.toy_agent import Tally

Check = Callable[[Make, Examples], None]


@cache
def _settings() -> Settings:
    return Settings()


def _maker(row: AgentRow) -> Make:
    return lambda shared: row.make(AgentContext(_settings(), shared, row.role))


@cache
def _examples(name: str) -> Examples:
    row = next(r for r in WIRING if r.name == name)
    agent = _maker(row)(SharedState())
    examples = getattr(type(agent), "examples", None)
    assert examples is not None, f"{row.name}: the agent class has no examples() classmethod"
    return examples()  # type: ignore[no-any-return]


@pytest.mark.parametrize(("row", "check"), [(r, c) for r in WIRING for c in CHECKS],
                         ids=[f"{r.name}:{c.__name__}" for r in WIRING for c in CHECKS])
def test_agent_contract(row: AgentRow, check: Check) -> None:
    check(_maker(row), _examples(row.name))


def test_every_row_builds_the_agent_it_names() -> None:
    names = [r.name for r in WIRING]
    assert len(names) == len(set(names))
    for row in WIRING:
        agent = _maker(row)(SharedState())
        assert isinstance(agent, Agent) and agent.name == row.name


# --- the checks fail when the contract is broken ------------------------------------------------
class _Counter(AgentBase):
    """Counts samples per resource and emits nothing but the count (state in `counts`)."""

    name = "counter"
    inputs = (MetricSample,)

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}

    def handle(self, event: Event) -> list[Event]:
        if not isinstance(event, MetricSample):
            return super().handle(event)
        n = self.counts[event.resource_id] = self.counts.get(event.resource_id, 0) + 1
        return [MetricSample.caused_by(event, resource_id=event.resource_id, extra={"n": n})]

    def state_key(self, event: Event) -> str | None:
        return event.resource_id if isinstance(event, MetricSample) else None

    def snapshot(self, key: str) -> bytes | None:
        return str(self.counts[key]).encode() if key in self.counts else None

    def restore(self, key: str, blob: bytes) -> None:
        if not blob.isdigit():
            raise DecodeError(f"counter state of {key} is not a number")
        self.counts[key] = int(blob)

    def forget(self, key: str) -> None:
        self.counts.pop(key, None)


class _Forgetful(_Counter):
    def restore(self, key: str, blob: bytes) -> None:
        return None  # loses the count: the restored agent counts from 1 again


class _Silent(_Counter):
    def handle(self, event: Event) -> list[Event]:
        if not isinstance(event, MetricSample):
            return []  # swallows what it does not take
        return super().handle(event)


class _Careless(_Counter):
    def restore(self, key: str, blob: bytes) -> None:
        self.counts[key] = int(blob)  # ValueError on garbage: outside the exception tree


class _Random(_Counter):
    def handle(self, event: Event) -> list[Event]:
        import uuid

        out = super().handle(event)
        return [*out, MetricSample(resource_id=str(uuid.uuid1()))]  # not from the pinned ids


SAMPLES = Examples(inputs=[MetricSample(resource_id=f"vm-{i % 3}", event_id=str(i))
                           for i in range(12)])


def test_the_counter_passes_every_check() -> None:
    for check in CHECKS:
        check(lambda _shared: _Counter(), SAMPLES)


@pytest.mark.parametrize(("agent", "check_name"), [
    (_Forgetful, "check_snapshot_restore"),
    (_Silent, "check_bad_input"),
    (_Random, "check_deterministic"),
    (_Careless, "check_garbled_state"),
])
def test_a_broken_agent_fails_its_check(agent: type[_Counter], check_name: str) -> None:
    check = next(c for c in CHECKS if c.__name__ == check_name)
    with pytest.raises(AssertionError):
        check(lambda _shared: agent(), SAMPLES)


def test_the_toy_agent_of_the_contributing_guide_passes_every_check() -> None:
    for check in CHECKS:
        check(lambda _shared: Tally(), Tally.examples())


def test_pinned_ids_and_clock_repeat() -> None:
    with frozen_ids_and_clock(3):
        first = [MetricSample(resource_id="a") for _ in range(3)]
    with frozen_ids_and_clock(3):
        again = [MetricSample(resource_id="a") for _ in range(3)]
    assert [(e.event_id, e.event_time) for e in first] == [(e.event_id, e.event_time)
                                                           for e in again]
    assert len({e.event_id for e in first}) == 3
