"""The optimizer's host without a broker: checkpoints, redelivery, rebalances, failed sends."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from agents.optimizer import Optimizer, OptimizerConfig
from schemas import Event, Insight, MetricSample
from schemas.codec import Codec
from streams.optimizer import (
    CheckpointConfig,
    MemoryStateStore,
    OptimizerHost,
    OptimizerMetrics,
    RawSample,
)

CODEC = Codec()
# a week ago at midnight: inside the edge's event-time window whenever the test runs
T0 = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=7)
CONFIG = OptimizerConfig(forecast_every=1)


def _records(start: int, count: int, rids: tuple[str, ...] = ("a", "b")) -> list[RawSample]:
    """Resource i lives on partition i; offsets count per partition."""
    out: list[RawSample] = []
    for i in range(start, start + count):
        for p, rid in enumerate(rids):
            sample = MetricSample(resource_id=rid, event_id=str(uuid.UUID(int=i * 10 + p)),
                                  event_time=T0 + timedelta(minutes=i), cpu_usage=30 + (i * 7) % 13,
                                  memory_usage=40.0 + p, cost_per_hour=0.2, active_vms=2)
            out.append((p, i, CODEC.encode(sample)))
    return out


class _Sink:
    def __init__(self) -> None:
        self.events: list[Event] = []
        self.fail = False

    async def emit(self, events: list[Event]) -> int:
        if self.fail:
            raise ConnectionError("broker gone")
        self.events.extend(events)
        return len(events)


def _host(store: MemoryStateStore, sink: _Sink, every: int = 1000) -> OptimizerHost:
    return OptimizerHost(Optimizer(CONFIG), store, CheckpointConfig(every_samples=every),
                         OptimizerMetrics(registry=None), sink.emit,
                         lambda values: [CODEC.decode(v, MetricSample) for v in values])


def _forecasts(events: list[Event]) -> list[tuple[str | None, str | None, float | None]]:
    return [(e.causation_id, e.metric, e.value) for e in events
            if isinstance(e, Insight) and e.kind == "forecast"]


def _reference(records: list[RawSample]) -> list[tuple[str | None, str | None, float | None]]:
    opt = Optimizer(CONFIG)
    samples = [CODEC.decode(v, MetricSample) for _p, _o, v in records]
    return _forecasts([e for s in samples for e in opt.process(s)])


async def test_every_n_samples_saves_and_a_new_host_resumes_without_relearning() -> None:
    store, sink = MemoryStateStore(), _Sink()
    first = _host(store, sink, every=20)
    for start in range(0, 50, 10):  # batches of 10: due resources are saved after each batch
        await first.handle(_records(start, 10))
    assert {rid: meta.samples for part in store.partitions.values()
            for rid, (_b, meta) in part.items()} == {"a": 40, "b": 40}
    await first.shutdown()  # graceful: the last 10 samples are saved too
    second = _host(store, sink)
    assert await second.handle(_records(40, 10)) == []  # redelivered: already in the model
    await second.handle(_records(50, 30))
    assert _forecasts(sink.events) == _reference(_records(0, 80))


async def test_failed_send_relearns_the_batch_from_the_last_snapshot() -> None:
    store, sink = MemoryStateStore(), _Sink()
    host = _host(store, sink)
    await host.handle(_records(0, 30))
    await host.revoked({0, 1})  # saves both
    sink.fail = True
    with pytest.raises(ConnectionError):
        await host.handle(_records(30, 10))
    assert host.optimizer.resources() == []  # half-sent state is dropped, not checkpointed
    sink.fail = False
    await host.handle(_records(30, 20))  # Faust redelivers the unacknowledged batch
    assert _forecasts(sink.events) == _reference(_records(0, 50))


async def test_revoke_saves_only_moving_partitions_and_assignment_drops_them() -> None:
    store, sink = MemoryStateStore(), _Sink()
    host = _host(store, sink)
    await host.handle(_records(0, 25))
    await host.revoked({1})
    assert set(store.partitions) == {1}
    await host.assigned({0})
    assert host.optimizer.resources() == ["a"] and host.loaded == {0}
