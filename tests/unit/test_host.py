"""The generic host without a broker: decode once, dead letters, hand-offs, checkpoints."""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, datetime, timedelta

import orjson
import pytest

from agents.contract import AgentBase
from agents.decision import DecisionConfig, DecisionEngine
from agents.ingest import RawRecord, record_event_id
from agents.optimizer import Optimizer, OptimizerConfig
from models.dqn.safety import SafetyConfig
from schemas import DeadLetter, Decision, Event, Insight, MetricSample, Outcome
from schemas.codec import Codec
from schemas.errors import SchemaViolation
from streams.host import HostCore, Hosted, InputTopic
from streams.host_metrics import HostMetrics
from streams.settings import HostConfig
from streams.state import CheckpointBook, MemoryStateStore, StateMeta

CODEC = Codec()
T0 = datetime(2026, 3, 2, tzinfo=UTC)
METRICS, OUTCOMES = "t.metrics", "t.outcomes"
CONFIG = OptimizerConfig(forecast_every=1)


class _Sink:
    def __init__(self) -> None:
        self.events: list[Event] = []
        self.batches = 0
        self.fail = False

    async def emit(self, events: list[Event]) -> int:
        if self.fail:
            raise ConnectionError("broker gone")
        self.events.extend(events)
        self.batches += 1
        return len(events)

    def of(self, kind: type[Event]) -> list[Event]:
        return [e for e in self.events if isinstance(e, kind)]


def _core(store: MemoryStateStore, sink: _Sink, *agents: tuple[object, int]) -> HostCore:
    hosted = [Hosted(a, CheckpointBook(every, 3600.0)) for a, every in agents]  # type: ignore[arg-type]
    return HostCore("learn", hosted, [InputTopic(METRICS, MetricSample, external=True),
                                      InputTopic(OUTCOMES, Outcome)],
                    store, sink.emit, CODEC, HostMetrics(registry=None))


def _optimizer_core(store: MemoryStateStore, sink: _Sink, every: int = 1000) -> HostCore:
    return _core(store, sink, (Optimizer(CONFIG), every))


def _records(start: int, count: int, rids: tuple[str, ...] = ("a", "b")) -> list[RawRecord]:
    """Resource i lives on partition i; offsets count per partition."""
    out: list[RawRecord] = []
    for i in range(start, start + count):
        for p, rid in enumerate(rids):
            sample = MetricSample(resource_id=rid, event_id=str(uuid.UUID(int=i * 10 + p)),
                                  event_time=T0 + timedelta(minutes=i), cpu_usage=30 + (i * 7) % 13,
                                  memory_usage=40.0 + p, cost_per_hour=0.2, active_vms=2)
            out.append(RawRecord(METRICS, p, i, rid.encode(), CODEC.encode(sample)))
    return out


def _sample(rid: str, partition: int, offset: int, cpu: float) -> RawRecord:
    """One sample of `rid` at `offset` of its partition, a minute per offset."""
    s = MetricSample(resource_id=rid, event_time=T0 + timedelta(minutes=offset), cpu_usage=cpu)
    return RawRecord(METRICS, partition, offset, rid.encode(), CODEC.encode(s))


class _ByResource(AgentBase):
    """A test agent on metric samples whose state is kept per resource."""

    inputs = (MetricSample,)

    def state_key(self, event: Event) -> str | None:
        return event.resource_id  # type: ignore[attr-defined, no-any-return]


def _forecasts(events: list[Event]) -> list[tuple[str | None, str | None, float | None]]:
    return [(e.causation_id, e.metric, e.value) for e in events
            if isinstance(e, Insight) and e.kind == "forecast"]


def _reference(records: list[RawRecord]) -> list[tuple[str | None, str | None, float | None]]:
    opt = Optimizer(CONFIG)
    samples = [CODEC.decode(r.value, MetricSample) for r in records]
    return _forecasts([e for s in samples for e in opt.process(s)])


def _saved(store: MemoryStateStore) -> dict[str, int]:
    return {r.record_key.decode(): r.meta.events for part in store.partitions.values()
            for r in part.values() if r.blob is not None}


# --- checkpoints, redelivery, rebalances, failed sends (the optimizer's former host tests) -----
async def test_every_n_inputs_saves_and_a_new_host_resumes_without_relearning() -> None:
    store, sink = MemoryStateStore(), _Sink()
    first = _optimizer_core(store, sink, every=20)
    for start in range(0, 50, 10):  # batches of 10: due keys are saved after each batch
        await first.handle(_records(start, 10))
    assert _saved(store) == {"optimizer/a": 40, "optimizer/b": 40}
    await first.shutdown()  # graceful: the last 10 inputs are saved too
    assert _saved(store) == {"optimizer/a": 50, "optimizer/b": 50}
    second = _optimizer_core(store, sink)
    assert await second.handle(_records(40, 10)) == []  # redelivered: already in the models
    await second.handle(_records(50, 30))
    assert _forecasts(sink.events) == _reference(_records(0, 80))


async def test_failed_send_relearns_the_batch_from_the_last_snapshot() -> None:
    store, sink = MemoryStateStore(), _Sink()
    host = _optimizer_core(store, sink)
    await host.handle(_records(0, 30))
    await host.revoked({0, 1})  # saves both
    sink.fail = True
    with pytest.raises(ConnectionError):
        await host.handle(_records(30, 10))
    assert host.hosted[0].agent.resources() == []  # type: ignore[attr-defined]
    sink.fail = False
    await host.handle(_records(30, 20))  # the runner re-reads from the committed offsets
    assert _forecasts(sink.events) == _reference(_records(0, 50))


async def test_failed_checkpoint_also_relearns_from_the_last_snapshot() -> None:
    class Flaky(MemoryStateStore):
        fail = False

        async def save(self, records):  # type: ignore[no-untyped-def]
            if self.fail:
                raise ConnectionError("state topic unavailable")
            await super().save(records)

    store, sink = Flaky(), _Sink()
    host = _optimizer_core(store, sink, every=10)
    await host.handle(_records(0, 10))  # saved at 10
    store.fail = True
    with pytest.raises(ConnectionError):
        await host.handle(_records(10, 10))  # sent, but the snapshot at 20 failed
    assert host.loaded == set()  # so the models go back to the last good snapshot
    store.fail = False
    sink.events.clear()
    await host.handle(_records(10, 10))  # the runner re-reads from the committed offsets
    again = {CODEC.decode(r.value, MetricSample).event_id for r in _records(10, 10)}
    assert _forecasts(sink.events) == [f for f in _reference(_records(0, 20)) if f[0] in again]
    assert _saved(store) == {"optimizer/a": 20, "optimizer/b": 20}


async def test_revoke_saves_only_moving_partitions_and_assignment_drops_them() -> None:
    store, sink = MemoryStateStore(), _Sink()
    host = _optimizer_core(store, sink)
    await host.handle(_records(0, 25))
    await host.revoked({1})
    assert set(store.partitions) == {1}
    await host.assigned({0})
    assert host.hosted[0].agent.resources() == ["a"]  # type: ignore[attr-defined]
    assert host.loaded == {0}


async def test_assignment_restores_before_the_first_record_and_redelivery_after_revoke_is_a_replay(
) -> None:
    store, sink = MemoryStateStore(), _Sink()
    host = _optimizer_core(store, sink)
    await host.handle(_records(0, 10))
    await host.revoked({0, 1})  # a rebalance: the commit of that batch may have failed
    await host.assigned({0, 1})  # we keep both partitions, models stay in memory
    before = len(sink.events)
    assert await host.handle(_records(5, 5)) == []  # redelivered records are not learned twice
    assert len(sink.events) == before
    other = _optimizer_core(store, _Sink())
    await other.assigned({1})  # another worker takes partition 1 and restores it at once
    assert other.hosted[0].agent.resources() == ["b"]  # type: ignore[attr-defined]


async def test_age_saves_on_tick() -> None:
    store, sink = MemoryStateStore(), _Sink()
    host = _core(store, sink, (Optimizer(CONFIG), 1000))
    await host.handle(_records(0, 3))
    assert _saved(store) == {}  # neither 1000 inputs nor an hour
    host.hosted[0].book.max_age_seconds = 0.0
    await host.tick()
    assert _saved(store) == {"optimizer/a": 3, "optimizer/b": 3}


# --- decoding, dead letters, hand-offs -----------------------------------------------------------
async def test_each_record_is_decoded_once_with_the_sinks_position_id() -> None:
    store, sink = MemoryStateStore(), _Sink()
    seen: list[Event] = []

    class Spy(AgentBase):
        name, inputs = "spy", (MetricSample,)

        def handle(self, event: Event) -> list[Event]:
            seen.append(event)
            return []

    class Spy2(Spy):
        name = "spy2"

    host = _core(store, sink, (Spy(), 1), (Spy2(), 1))
    kcat = RawRecord(METRICS, 2, 17, b"vm", b'{"resource_id": "vm-1", "cpu_usage": 12.5}')
    await host.handle([kcat])
    assert len(seen) == 2 and seen[0] is seen[1]  # one decoded object for both agents
    assert seen[0].event_id == record_event_id(METRICS, 2, 17)  # what ingest stores


async def test_undecodable_and_rejected_records_become_dead_letters_with_reasons() -> None:
    store, sink = MemoryStateStore(), _Sink()

    class Picky(AgentBase):
        name, inputs = "picky", (MetricSample,)

        def handle(self, event: Event) -> list[Event]:
            if isinstance(event, MetricSample) and event.resource_id == "bad":
                raise SchemaViolation("resource 'bad' has no owner label")
            if isinstance(event, MetricSample) and event.resource_id == "bug":
                raise KeyError("owner")
            return []

    host = _core(store, sink, (Picky(), 1))
    await host.handle([
        RawRecord(METRICS, 0, 1, None, b"not json", timestamp_ms=1_767_225_600_123),
        RawRecord(METRICS, 0, 2, None, b'{"resource_id": "x", "cpu_usage": 180}'),
        RawRecord(METRICS, 0, 3, None, b'{"resource_id": "bad"}'),
        RawRecord(METRICS, 0, 4, None, b'{"resource_id": "bug"}'),
        RawRecord(METRICS, 0, 5, None, b'{"resource_id": "fine"}'),
    ])
    letters = {d.offset: d for d in sink.of(DeadLetter)}  # type: ignore[attr-defined]
    assert set(letters) == {1, 2, 3, 4} and sink.batches == 1
    assert letters[1].error_kind == "decode" and "not valid JSON" in letters[1].reason
    assert letters[1].event_id == record_event_id(METRICS, 0, 1)  # the sink's id for it
    # and the record's own time: every consumer that dead-letters it writes the same event
    assert letters[1].event_time == datetime(2026, 1, 1, 0, 0, 0, 123_000, tzinfo=UTC)
    assert letters[2].error_kind == "schema" and "less than or equal to 100" in letters[2].reason
    assert letters[3].error_kind == "schema" and letters[3].reason.startswith("picky: ")
    assert letters[4].error_kind == "processing" and "KeyError" in letters[4].reason
    assert letters[3].raw == b'{"resource_id": "bad"}' and letters[3].source_topic == METRICS


async def test_insights_reach_the_decision_agent_in_process_and_are_still_published() -> None:
    store, sink = MemoryStateStore(), _Sink()
    engine = DecisionEngine()
    host = _core(store, sink, (Optimizer(CONFIG), 1000), (engine, 1))
    records = []
    for i in range(6):
        s = MetricSample(resource_id="svc", resource_type="service", event_time=T0 + timedelta(
            minutes=i), cpu_usage=50.0 + i, request_rate=100.0 + 10 * i, active_vms=2)
        records.append(RawRecord(METRICS, 0, i, b"svc", CODEC.encode(s)))
    await host.handle(records)
    published = [e for e in sink.of(Insight) if e.kind == "forecast"]  # type: ignore[attr-defined]
    assert published  # on their topic for history
    window = engine.states.windows["svc"]
    assert window.forecast is not None  # and in the decision engine without a Kafka hop
    assert window.forecast[0] == published[-1].event_time


async def test_the_decision_state_survives_a_new_host_and_cooldowns_still_block() -> None:
    store, sink = MemoryStateStore(), _Sink()

    def hot(i: int) -> RawRecord:
        s = MetricSample(resource_id="svc", resource_type="service",
                         event_time=T0 + timedelta(minutes=i), cpu_usage=96.0,
                         network_latency_ms=450.0, error_rate=0.05, request_rate=900.0,
                         active_vms=3)
        return RawRecord(METRICS, 0, i, b"svc", CODEC.encode(s))

    config = DecisionConfig(safety=SafetyConfig(cooldown_seconds=3600, max_actions_per_window=99))
    first = _core(store, sink, (DecisionEngine(config), 1))
    for i in range(5):
        await first.handle([hot(i)])
    ups = [d for d in sink.of(Decision) if d.decision_type == "scale_up"]  # type: ignore[attr-defined]
    assert ups  # sustained overload forces scale_up
    sink.events.clear()
    second = _core(store, sink, (DecisionEngine(config), 1))  # restarted, nothing shut down
    for i in range(5, 9):
        await second.handle([hot(i)])
    assert all(d.decision_type != "scale_up" for d in sink.of(Decision))  # type: ignore[attr-defined]
    engine = second.hosted[0].agent
    assert isinstance(engine, DecisionEngine)
    latest = engine.states.latest("svc")
    assert latest is not None
    blocked = engine.guard.blocked("svc", latest, latest.event_time)
    assert blocked["scale_up"].startswith("cooldown: scale_up")
    cold, control = _Sink(), DecisionEngine(config)  # without the state: the overload timer
    await _core(MemoryStateStore(), cold, (control, 1)).handle([hot(i) for i in range(5, 9)])
    assert any(d.decision_type == "scale_up" for d in cold.of(Decision))  # type: ignore[attr-defined]


async def test_a_forgotten_key_is_a_tombstone_and_a_key_never_stored_sends_nothing() -> None:
    store, sink = MemoryStateStore(), _Sink()

    class Forgetful(_ByResource):
        """Holds state for a resource until its CPU drops under 50; `b` never holds any."""

        name = "forgetful"

        def __init__(self) -> None:
            self.held: dict[str, bytes] = {}

        def handle(self, event: Event) -> list[Event]:
            assert isinstance(event, MetricSample)
            if event.resource_id == "a" and (event.cpu_usage or 0.0) >= 50:
                self.held["a"] = b"busy"
            else:
                self.held.pop(event.resource_id, None)
            return []

        def snapshot(self, key: str) -> bytes | None:
            return self.held.get(key)

    host = _core(store, sink, (Forgetful(), 1))
    await host.handle([_sample("a", 0, 0, 90.0), _sample("b", 1, 0, 90.0)])
    assert {k: r.blob for k, r in store.partitions[0].items()} == {b"forgetful/a": b"busy"}
    assert 1 not in store.partitions  # `b` held nothing: no tombstone for a key never stored
    await host.handle([_sample("a", 0, 1, 10.0), _sample("b", 1, 1, 10.0)])
    assert store.partitions[0][b"forgetful/a"].blob is None  # compaction drops it
    assert 1 not in store.partitions


async def test_on_output_saves_a_key_whose_input_emitted_and_leaves_the_rest_to_the_count() -> None:
    store, sink = MemoryStateStore(), _Sink()

    class Alarm(_ByResource):
        """Counts samples per resource; a sample above 80 % CPU emits an anomaly insight."""

        name = "alarm"

        def __init__(self) -> None:
            self.seen: dict[str, int] = {}

        def handle(self, event: Event) -> list[Event]:
            assert isinstance(event, MetricSample)
            self.seen[event.resource_id] = self.seen.get(event.resource_id, 0) + 1
            if (event.cpu_usage or 0.0) <= 80:
                return []
            return [Insight.caused_by(event, resource_id=event.resource_id, kind="anomaly",
                                      value=event.cpu_usage)]

        def snapshot(self, key: str) -> bytes | None:
            return str(self.seen[key]).encode() if key in self.seen else None

    hosted = Hosted(Alarm(), CheckpointBook(every_events=3, max_age_seconds=3600.0,
                                            on_output=True))
    host = HostCore("learn", [hosted], [InputTopic(METRICS, MetricSample, external=True)],
                    store, sink.emit, CODEC, HostMetrics(registry=None))
    await host.handle([_sample("hot", 0, 0, 95.0), _sample("calm", 1, 0, 20.0)])
    assert _saved(store) == {"alarm/hot": 1}  # its insight is out: its state is durable
    await host.handle([_sample("hot", 0, 1, 20.0), _sample("calm", 1, 1, 20.0)])
    assert _saved(store) == {"alarm/hot": 1}  # no output: both wait for the count
    await host.handle([_sample("hot", 0, 2, 20.0), _sample("calm", 1, 2, 20.0)])
    assert _saved(store) == {"alarm/hot": 1, "alarm/calm": 3}  # calm's third input
    assert len(sink.of(Insight)) == 1
    without = MemoryStateStore()  # the same inputs, the same count, without on_output
    plain = _core(without, _Sink(), (Alarm(), 3))
    await plain.handle([_sample("hot", 0, 0, 95.0), _sample("calm", 1, 0, 20.0)])
    assert _saved(without) == {}


def test_state_meta_round_trips_through_headers() -> None:
    meta = StateMeta(3, {"t.metrics/3": 41, "t.outcomes/3": 7}, 48)
    assert StateMeta.from_headers(3, meta.headers()) == meta
    assert orjson.loads(dict(meta.headers())["novacron-positions"]) == meta.positions


def test_book_due_by_count_or_age_and_replay_only_below_restored_positions() -> None:
    book = CheckpointBook(every_events=3, max_age_seconds=10.0)
    book.restored("a", StateMeta(0, {"m/0": 5}, 5))
    assert book.replayed("a", ("m", 0, 5)) and not book.replayed("a", ("m", 0, 6))
    assert not book.replayed("a", ("o", 0, 1))  # another input's offsets are separate
    book.touched("a", ("m", 0, 6))
    assert book.due(now=0.0) == [] and book.due(now=1e12) == ["a"]
    book.touched("a", ("m", 0, 7))
    book.touched("a", ("m", 0, 8))
    assert book.due(now=0.0) == ["a"]
    assert book.meta("a") == StateMeta(0, {"m/0": 8}, 8)
    book.saved("a", now=0.0)
    book.touched("a", ("m", 0, 9))
    book.emitted("a")  # without on_output an emitting input changes nothing
    assert book.due(now=0.0) == []


def test_book_spreads_saves_due_together_over_batches_oldest_first() -> None:
    book = CheckpointBook(every_events=2, max_age_seconds=60.0, on_output=True, max_per_batch=2)
    for i, key in enumerate("abcde"):  # saved at t=i: `a` has waited longest
        book.touched(key, ("m", 0, i))
        book.saved(key, now=float(i))
        book.touched(key, ("m", 0, 10 + i))
        book.touched(key, ("m", 0, 20 + i))  # every key reaches the count at once
    assert book.due(now=5.0) == ["a", "b"]
    book.touched("e", ("m", 0, 30))
    book.emitted("e")  # its input emitted: saved now, outside the limit
    assert book.due(now=5.0) == ["e", "a", "b"]
    for key in ("e", "a", "b"):
        book.saved(key, now=5.0)
    assert book.due(now=5.0) == ["c", "d"]
    assert sorted(book.due(now=5.0, force=True)) == ["c", "d"]  # shutdown: no limit
    book.saved("c", now=5.0)
    book.saved("d", now=5.0)
    assert book.due(now=5.0) == []


# --- where a batch runs ----------------------------------------------------------------------
class _Threads(AgentBase):
    """Records the thread each input is handled on."""

    inputs = (MetricSample,)

    def __init__(self) -> None:
        self.threads: list[int] = []

    def handle(self, event: Event) -> list[Event]:
        self.threads.append(threading.get_ident())
        return []


@pytest.mark.parametrize(("inline_records", "size", "on_loop"),
                         [(100, 2, True), (100, 100, True), (100, 101, False), (0, 1, False)])
async def test_a_batch_up_to_inline_records_runs_on_the_event_loop_a_longer_one_in_a_thread(
        inline_records: int, size: int, on_loop: bool) -> None:
    agent, sink = _Threads(), _Sink()
    host = HostCore("learn", [Hosted(agent, CheckpointBook(1000, 3600.0))],  # type: ignore[arg-type]
                    [InputTopic(METRICS, MetricSample, external=True)], MemoryStateStore(),
                    sink.emit, CODEC, HostMetrics(registry=None), inline_records=inline_records)
    await host.handle(_records(0, size, rids=("a",)))
    assert len(agent.threads) == size
    if on_loop:
        assert set(agent.threads) == {threading.get_ident()}
    else:
        assert threading.get_ident() not in agent.threads


def test_the_hosts_default_is_the_settings_default() -> None:
    assert HostCore("learn", [], [], MemoryStateStore(), _Sink().emit, CODEC,
                    HostMetrics(registry=None)).inline_records == HostConfig().inline_records
