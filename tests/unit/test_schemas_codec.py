"""The wire codec: round trips, format detection, schema evolution and readable rejections."""

from __future__ import annotations

import json

import fastavro
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas import EVENT_TYPES, ConfigChange, DeadLetter, MetricSample
from schemas.avro import AVRO_DIR, MAGIC, AvroRegistry, avro_schema
from schemas.codec import Codec
from schemas.errors import DecodeError, OversizedMessage, SchemaViolation
from tests.strategies import events

CODEC = Codec()


@pytest.mark.parametrize("name", sorted(EVENT_TYPES))
@pytest.mark.parametrize("fmt", ["json", "avro"])
def test_every_event_type_round_trips(name: str, fmt: str) -> None:
    model = EVENT_TYPES[name]

    @settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(events(model))
    def check(event):  # type: ignore[no-untyped-def]
        raw = CODEC.encode(event, fmt)  # type: ignore[arg-type]
        assert (raw[:2] == MAGIC) == (fmt == "avro")
        assert CODEC.decode(raw, model) == event

    check()


@pytest.mark.parametrize("name", sorted(EVENT_TYPES))
def test_committed_avro_schema_matches_the_model(name: str) -> None:
    committed = json.loads((AVRO_DIR / f"{name}.avsc").read_text())
    assert committed == avro_schema(EVENT_TYPES[name]), "run `python -m schemas` and review"


def _with_new_field(schema: dict) -> dict:
    newer = json.loads(json.dumps(schema))
    newer["fields"].append({"name": "gpu_usage", "type": ["null", "double"], "default": None})
    return newer


def test_new_writer_with_added_optional_field_is_readable_by_old_reader() -> None:
    newer = _with_new_field(avro_schema(MetricSample))
    registry = AvroRegistry(EVENT_TYPES.values())
    writer = registry.register(newer)
    sample = MetricSample(resource_id="vm-1", cpu_usage=12.5)
    record = sample.model_dump(mode="python") | {"gpu_usage": 55.0}
    raw = registry.encode(record, writer)
    decoded = Codec(registry=registry).decode(raw, MetricSample)
    assert decoded == sample


def test_old_writer_without_field_is_readable_by_new_reader() -> None:
    older = json.loads(json.dumps(avro_schema(MetricSample)))
    older["fields"] = [f for f in older["fields"] if f["name"] != "extra"]
    registry = AvroRegistry(EVENT_TYPES.values())
    writer = registry.register(older)
    sample = MetricSample(resource_id="vm-2", memory_usage=40.0)
    record = {k: v for k, v in sample.model_dump(mode="python").items() if k != "extra"}
    decoded = Codec(registry=registry).decode(registry.encode(record, writer), MetricSample)
    assert decoded == sample and decoded.extra == {}


def test_json_with_unknown_field_from_a_newer_writer_is_accepted() -> None:
    raw = b'{"resource_id": "vm-3", "cpu_usage": 5, "gpu_usage": 9}'
    assert CODEC.decode(raw, MetricSample).cpu_usage == 5


def test_history_schemas_are_resolvable(tmp_path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "MetricSample.v0.avsc").write_text(
        json.dumps(_with_new_field(avro_schema(MetricSample)))
    )
    registry = AvroRegistry(EVENT_TYPES.values(), tmp_path)
    newer = fastavro.parse_schema(_with_new_field(avro_schema(MetricSample)))
    assert newer is not None
    assert len(registry._by_fp) == len(EVENT_TYPES) + 1


@pytest.mark.parametrize(
    ("raw", "error", "words"),
    [
        (b"", DecodeError, "empty"),
        (b"\xff\xfe garbage", DecodeError, "not valid JSON"),
        (b'{"resource_id": "vm-1", "cpu_usage": ', DecodeError, "not valid JSON"),
        (b"[1, 2, 3]", SchemaViolation, "expected a JSON object"),
        (b'{"cpu_usage": 10}', SchemaViolation, "resource_id: Field required"),
        (
            b'{"resource_id": "vm", "cpu_usage": "high"}',
            SchemaViolation,
            "cpu_usage: Input should be a valid number",
        ),
        (b'{"resource_id": "vm", "cpu_usage": 140}', SchemaViolation, "less than or equal to 100"),
        (b'{"resource_id": "vm", "error_rate": -0.1}', SchemaViolation, "error_rate"),
        (b'{"resource_id": "vm", "labels": {"a": 1}}', SchemaViolation, "labels.a"),
        (
            b'{"event_type": "Decision", "resource_id": "vm"}',
            SchemaViolation,
            "event_type is 'Decision'",
        ),
        (MAGIC + b"\x00" * 8 + b"\x02", DecodeError, "unknown Avro writer schema"),
    ],
)
def test_bad_input_is_rejected_with_a_readable_reason(raw: bytes, error: type, words: str) -> None:
    with pytest.raises(error) as info:
        CODEC.decode(raw, MetricSample)
    assert words in info.value.reason


def test_truncated_avro_is_a_decode_error() -> None:
    raw = CODEC.encode(ConfigChange(resource_id="r", resource_type="t", config={"a": 1}), "avro")
    with pytest.raises(DecodeError, match="corrupt Avro body"):
        CODEC.decode(raw[:-3], ConfigChange)


def test_oversized_messages_are_rejected() -> None:
    small = Codec(max_bytes=2048)
    raw = json.dumps({"resource_id": "vm", "labels": {"x": "y" * 4000}}).encode()
    with pytest.raises(OversizedMessage, match="above the 2048 limit"):
        small.decode(raw, MetricSample)


def test_missing_is_not_zero() -> None:
    sample = CODEC.decode(b'{"resource_id": "vm-9", "memory_usage": 20}', MetricSample)
    assert sample.cpu_usage is None and sample.memory_usage == 20


@given(st.binary(max_size=200))
@settings(max_examples=200, deadline=None)
def test_arbitrary_bytes_never_raise_anything_but_dead_letter_errors(raw: bytes) -> None:
    from schemas.errors import DeadLetterError

    try:
        CODEC.decode(raw, DeadLetter)
    except DeadLetterError as exc:
        assert exc.reason


def test_chain_helpers_keep_correlation() -> None:
    from schemas import Decision, Insight

    sample = MetricSample(resource_id="svc")
    insight = Insight.caused_by(sample, resource_id="svc", kind="anomaly", score=0.9)
    decision = Decision.caused_by(insight, resource_id="svc", decision_type="scale_up")
    assert sample.correlation_id == sample.event_id
    assert insight.correlation_id == decision.correlation_id == sample.event_id
    assert decision.causation_id == insight.event_id


def test_event_time_is_utc_milliseconds() -> None:
    sample = CODEC.decode(
        b'{"resource_id": "v", "event_time": "2026-01-02T03:04:05.123456+02:00"}', MetricSample
    )
    assert sample.event_time.isoformat() == "2026-01-02T01:04:05.123000+00:00"
