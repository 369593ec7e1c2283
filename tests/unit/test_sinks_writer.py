"""BatchingSink: size/time triggers, one INSERT per table, offsets only after insert, outages."""

from __future__ import annotations

import pytest

from schemas import MetricSample
from sinks.audit import AuditChain, verify_chain
from sinks.backend import FlakyBackend, MemoryBackend
from sinks.config import SinkConfig
from sinks.writer import BatchingSink, SinkStopped
from tests.unit.test_sinks_examples import EXAMPLES

MS = "`novacron`.`metric_samples`"


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def make_sink(backend, clock: FakeClock, **cfg) -> BatchingSink:
    return BatchingSink(backend, "novacron", SinkConfig(**cfg), sleep=clock.sleep, clock=clock)


def samples(n: int, start: int = 0) -> list[MetricSample]:
    return [
        MetricSample(resource_id=f"vm-{i % 3}", cpu_usage=float(i % 100))
        for i in range(start, start + n)
    ]


def test_due_on_size():
    clock = FakeClock()
    sink = make_sink(MemoryBackend(), clock, batch_size=3, batch_seconds=60)
    for i, s in enumerate(samples(2)):
        sink.add(s, "metrics", 0, i)
    assert not sink.due(clock())
    sink.add(samples(1)[0], "metrics", 0, 2)
    assert sink.due(clock())


def test_due_on_time_since_first_record():
    clock = FakeClock()
    sink = make_sink(MemoryBackend(), clock, batch_size=1000, batch_seconds=1.0)
    assert not sink.due(clock.now + 50)  # empty batch is never due
    sink.add(samples(1)[0], "metrics", 0, 0)
    assert not sink.due(clock.now + 0.99)
    assert sink.due(clock.now + 1.0)


def test_flush_one_insert_per_table_and_next_offsets():
    backend, clock = MemoryBackend(), FakeClock()
    sink = make_sink(backend, clock)
    for i, s in enumerate(samples(5)):
        sink.add(s, "metrics", i % 2, 10 + i)
    sink.add(EXAMPLES["Decision"], "decisions", 3, 7)
    offsets = sink.flush()
    assert offsets == {("metrics", 0): 15, ("metrics", 1): 14, ("decisions", 3): 8}
    assert backend.inserts == 2
    assert len(backend.tables[MS]) == 5 and len(backend.tables["`novacron`.`decisions`"]) == 1
    assert sink.stats.rows_inserted == 6 and sink.stats.batches == 1 and len(sink) == 0
    assert sink.flush() == {} and backend.inserts == 2  # nothing buffered, nothing inserted


def test_outage_retries_with_capped_backoff_then_returns_offsets_once():
    inner, clock = MemoryBackend(), FakeClock()
    flaky = FlakyBackend(inner)
    flaky.fail_next = 7
    retries: list[int] = []
    sink = BatchingSink(
        flaky, "novacron",
        SinkConfig(retry_initial_seconds=0.5, retry_max_seconds=4.0),
        sleep=clock.sleep, clock=clock, on_retry=lambda a, d, e: retries.append(a),
    )
    for i, s in enumerate(samples(4)):
        sink.add(s, "metrics", 0, i)
    offsets = sink.flush()
    assert clock.sleeps == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0, 4.0]
    assert retries == [1, 2, 3, 4, 5, 6, 7]
    assert offsets == {("metrics", 0): 4}
    assert len(inner.tables[MS]) == 4 and inner.inserts == 1
    assert sink.stats.failed_attempts == 7 and sink.stats.last_error == ""


def test_no_offsets_while_down_and_stop_keeps_the_batch():
    inner, clock = MemoryBackend(), FakeClock()
    flaky = FlakyBackend(inner)
    flaky.down = True
    sink = make_sink(flaky, clock)

    def stop_after_three(seconds: float) -> None:
        clock.sleep(seconds)
        if len(clock.sleeps) == 3:
            sink.stop()

    sink._sleep = stop_after_three
    batch = samples(3)
    for i, s in enumerate(batch):
        sink.add(s, "metrics", 0, i)
    with pytest.raises(SinkStopped):
        sink.flush()
    assert inner.tables[MS] == [] and len(sink) == 3  # nothing inserted, nothing lost
    assert "simulated outage" in sink.stats.last_error
    # Records added after the failure are kept behind the failed batch, offsets merged.
    sink.add(samples(1)[0], "metrics", 1, 99)
    flaky.down = False
    sink._stop.clear()
    assert sink.flush() == {("metrics", 0): 3, ("metrics", 1): 100}
    ids = [r["event_id"] for r in inner.tables[MS]]
    assert ids[:3] == [s.event_id for s in batch] and len(ids) == 4


def test_partial_insert_is_retried_whole_and_offsets_wait():
    inner, clock = MemoryBackend(), FakeClock()

    class FailSecondTable(FlakyBackend):
        def insert_rows(self, table, rows):
            if "decisions" in table and self.fail_next:
                self.fail_next -= 1
                from schemas.errors import BackendUnavailable

                raise BackendUnavailable("decisions table down")
            self.inner.insert_rows(table, rows)

    backend = FailSecondTable(inner)
    backend.fail_next = 1
    sink = make_sink(backend, clock)
    sink.add(samples(1)[0], "metrics", 0, 0)
    sink.add(EXAMPLES["Decision"], "decisions", 0, 0)
    assert sink.flush() == {("metrics", 0): 1, ("decisions", 0): 1}
    # metric rows were inserted twice: the tables dedupe by event_id (tested on chDB)
    assert len(inner.tables[MS]) == 2 and len(inner.tables["`novacron`.`decisions`"]) == 1


def test_audit_rows_are_built_once_per_batch_and_survive_retries():
    inner, clock = MemoryBackend(), FakeClock()
    flaky = FlakyBackend(inner)
    flaky.fail_next = 2
    sink = BatchingSink(flaky, "novacron", audit=AuditChain(), sleep=clock.sleep, clock=clock)
    for i, etype in enumerate(["MetricSample", "Decision", "PolicyVerdict", "Action", "Outcome"]):
        sink.add(EXAMPLES[etype], "t", 0, i)
    sink.flush()
    audit = inner.tables["`novacron`.audit_log"]
    assert [r["kind"] for r in audit] == ["Decision", "PolicyVerdict", "Action", "Outcome"]
    assert [r["seq"] for r in audit] == [1, 2, 3, 4]
    assert verify_chain(audit) == []
