"""The event-time window (issue 11, finding 5), its configuration, and one verdict per record:
the sink (Ingestor) dead-letters exactly what the agent hosts (WorkerContext.decode_all) skip."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from prometheus_client import CollectorRegistry

from agents.ingest import Ingestor, RawRecord
from schemas import EVENT_TYPES, DeadLetter, Decision, MetricSample
from schemas.avro import MAGIC
from schemas.codec import Codec
from schemas.edge import EdgeRules
from schemas.errors import SchemaViolation
from streams.app import WorkerContext
from streams.metrics import WorkerMetrics
from streams.settings import Settings
from tests.unit.test_sinks_examples import EXAMPLES

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
CODEC = Codec(clock=lambda: NOW)
STATE_TYPES = sorted(t for t, m in EVENT_TYPES.items() if m.latest_wins)


def stamp(event_type: str, when: datetime | str) -> bytes:
    data = orjson.loads(CODEC.encode(EXAMPLES[event_type]))
    data["event_time"] = when if isinstance(when, str) else when.isoformat()
    return orjson.dumps(data)


def reason(raw: bytes, event_type: str, codec: Codec = CODEC) -> str:
    with pytest.raises(SchemaViolation) as info:
        codec.decode(raw, EVENT_TYPES[event_type])
    return info.value.reason


@pytest.mark.parametrize("when", ["9999-01-01T00:00:00Z", "2105-06-01T00:00:00Z",
                                  "2150-01-01T00:00:00Z"])
@pytest.mark.parametrize("event_type", sorted(EVENT_TYPES))
def test_the_findings_far_future_times_are_refused_for_every_event_type(
        event_type: str, when: str) -> None:
    assert "is more than 1 h ahead of now" in reason(stamp(event_type, when), event_type)


@pytest.mark.parametrize("event_type", sorted(set(EVENT_TYPES) - set(STATE_TYPES)))
def test_older_than_the_retention_is_refused(event_type: str) -> None:
    old = NOW - timedelta(days=365, milliseconds=1)
    text = reason(stamp(event_type, old), event_type)
    assert "older than the 365-day history retention" in text


@pytest.mark.parametrize("event_type", sorted(EVENT_TYPES))
def test_the_window_edges_are_inclusive(event_type: str) -> None:
    model = EVENT_TYPES[event_type]
    ahead = NOW + timedelta(hours=1)
    assert CODEC.decode(stamp(event_type, ahead), model).event_time == ahead
    oldest = NOW - timedelta(days=365)
    assert CODEC.decode(stamp(event_type, oldest), model).event_time == oldest
    with pytest.raises(SchemaViolation):
        CODEC.decode(stamp(event_type, ahead + timedelta(milliseconds=1)), model)


@pytest.mark.parametrize("event_type", STATE_TYPES)
def test_compacted_state_is_never_too_old_but_never_in_the_future(event_type: str) -> None:
    # a baseline or policy stays the latest per key however long ago it was declared
    years_ago = NOW - timedelta(days=3 * 365)
    model = EVENT_TYPES[event_type]
    assert CODEC.decode(stamp(event_type, years_ago), model).event_time == years_ago
    assert "ahead of now" in reason(stamp(event_type, "2150-01-01T00:00:00Z"), event_type)


def test_the_catalogue_compacts_exactly_the_state_types() -> None:
    from streams.topics import CATALOGUE

    compacted = sorted(s.event_type.event_type for s in CATALOGUE.values() if s.compacted)
    assert compacted == STATE_TYPES


def test_avro_times_are_judged_the_same() -> None:
    record = EXAMPLES["MetricSample"].model_dump(mode="python")
    record["event_time"] = datetime(2150, 1, 1, tzinfo=UTC)
    registry = CODEC.registry
    raw = registry.encode(record, registry.current("MetricSample"))
    assert "ahead of now" in reason(raw, "MetricSample")


def test_configured_window() -> None:
    codec = Codec(rules=EdgeRules(max_age_days=1, max_future_seconds=60), clock=lambda: NOW)
    assert "older than the 1-day" in reason(stamp("MetricSample", NOW - timedelta(days=2)),
                                            "MetricSample", codec)
    assert "more than 60 s ahead" in reason(stamp("MetricSample", NOW + timedelta(minutes=2)),
                                            "MetricSample", codec)


def test_events_built_in_code_are_not_judged_by_the_clock() -> None:
    # only decoding applies the window: replays and simulations build events with their own time
    old = MetricSample(resource_id="vm-1", event_time=datetime(2001, 1, 1, tzinfo=UTC))
    assert old.event_time.year == 2001


# --- configuration --------------------------------------------------------------------------


def test_max_age_follows_the_history_ttl() -> None:
    settings = Settings(clickhouse={"ttl_days": 30})  # type: ignore[arg-type]
    assert settings.edge.max_age_days == 30
    assert settings.codec().rules.max_age_days == 30


def test_max_age_beyond_the_ttl_is_a_configuration_error() -> None:
    with pytest.raises(ValueError, match=r"edge.max_age_days \(400\) is above clickhouse.ttl"):
        Settings(clickhouse={"ttl_days": 365}, edge={"max_age_days": 400})  # type: ignore[arg-type]


def test_edge_limits_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NOVACRON_EDGE__MAX_DEPTH", "8")
    monkeypatch.setenv("NOVACRON_EDGE__MAX_FUTURE_SECONDS", "120")
    rules = Settings().codec().rules
    assert (rules.max_depth, rules.max_future_seconds) == (8, 120)


def test_depth_setting_stays_below_what_orjson_can_write() -> None:
    with pytest.raises(ValueError, match="less than or equal to 200"):
        EdgeRules(max_depth=254)


# --- one verdict: the sink and the agent hosts judge each record the same way ---------------


def _deep(depth: int) -> Any:
    value: Any = 0
    for _ in range(depth):
        value = {"a": value}
    return value


def corpus(model: type[Any]) -> list[bytes | None]:
    """Valid and invalid records of every class in the finding, for one event type."""
    good = orjson.loads(CODEC.encode(EXAMPLES[model.event_type]))
    field = "params" if model is Decision else "labels"
    return [
        orjson.dumps(good),
        json.dumps({**good, field: _deep(300)}).encode(),  # deep nesting
        orjson.dumps({**good, field: {"k": "x" * 300_000}}),  # huge string
        orjson.dumps({**good, "resource_id": 17}),  # wrong type
        orjson.dumps({**good, "resource_id": "vm\x00\n"}),  # control characters
        orjson.dumps({**good, "event_time": "9999-01-01T00:00:00Z"}),  # absurd time
        b"\xff\xfe not json",  # not JSON
        MAGIC + b"\x01" * 8 + b"garbage",  # Avro garbage
        None,  # tombstone
        orjson.dumps({**good, "resource_id": "vm-2"}),
        orjson.dumps({**good, field: {"k": "x" * 1_100_000}}),  # oversized, huge string
        # 1.25 MB within every shape limit: too large for a producers' topic (metrics), fine
        # for a topic the agents write (decisions)
        orjson.dumps({**good, "resource_id": "vm-big",
                      field: {f"k{i}": "x" * 250_000 for i in range(5)}}),
    ]


@pytest.mark.parametrize("model", [MetricSample, Decision])
def test_the_sink_dead_letters_exactly_what_the_agents_skip(model: type[Any]) -> None:
    settings = Settings()
    codec = Codec(settings.max_message_bytes, rules=settings.edge, clock=lambda: NOW)
    ctx = WorkerContext(settings, "learn", codec, WorkerMetrics(CollectorRegistry()))
    ingestor = Ingestor(codec)
    external = model is MetricSample
    records = corpus(model)
    agent_kept = {e.resource_id for e in ctx.decode_all(records, model)}
    sink = [ingestor.decode(RawRecord("t", 0, i, None, v), model, external)
            for i, v in enumerate(records)]
    sink_kept = {e.resource_id for e in sink if not isinstance(e, DeadLetter)}
    expected = {"vm-1", "vm-2"} if external else {"svc-a", "vm-2", "vm-big"}
    assert agent_kept == sink_kept == expected
    letters = [e for e in sink if isinstance(e, DeadLetter)]
    assert len(letters) == len(records) - len(expected) and all(dl.reason for dl in letters)
    skipped = ctx.metrics.events.labels("learn", "skipped-invalid")._value.get()
    assert skipped == len(letters)
