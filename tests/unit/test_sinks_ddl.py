"""Table specs follow the event models; rows carry typed columns and the lossless payload."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

import orjson
import pytest

from schemas import EVENT_TYPES, DeadLetter, MetricSample
from schemas.codec import Codec
from sinks.config import ClickHouseConfig, SinkConfig
from sinks.ddl import TABLES, column_for, create_statements, table_for
from sinks.rows import format_datetime, to_row
from tests.unit.test_sinks_examples import EXAMPLES, T0

CODEC = Codec(clock=lambda: T0)  # the examples' time: inside the edge's event-time window


def test_every_event_type_has_a_table_with_unique_name():
    assert set(TABLES) == set(EVENT_TYPES)
    names = [spec.name for spec in TABLES.values()]
    assert len(set(names)) == len(names) == 15
    assert table_for("PolicyVerdict") == "policy_verdicts"
    assert table_for("MetricSample") == "metric_samples"
    with pytest.raises(KeyError, match="no history table"):
        table_for("Nope")


@pytest.mark.parametrize("event_type", sorted(EVENT_TYPES))
def test_every_model_field_is_a_column_or_in_payload(event_type):
    spec = TABLES[event_type]
    model = EVENT_TYPES[event_type]
    columns = {c.name for c in spec.columns}
    for name in model.model_fields:
        assert name in columns or name == "raw", name
    assert {"event_id", "event_time", "source", "correlation_id", "causation_id"} <= columns
    assert {"payload", "ingested_at"} <= columns
    assert spec.order_by[-1] == "event_id"
    assert all(c in columns for c in spec.order_by)


def test_every_example_covers_its_type():
    assert set(EXAMPLES) == set(EVENT_TYPES)


@pytest.mark.parametrize(
    ("annotation", "expected", "kind"),
    [
        (str, "String", "plain"),
        (int, "Int64", "plain"),
        (bool, "Bool", "plain"),
        (float | None, "Nullable(Float64)", "plain"),
        (int | None, "Nullable(Int64)", "plain"),
        (str | None, "Nullable(String)", "plain"),
        (datetime, "DateTime64(3, 'UTC')", "datetime"),
        (datetime | None, "Nullable(DateTime64(3, 'UTC'))", "datetime"),
        (Literal["a", "b"], "LowCardinality(String)", "plain"),
        (dict[str, str], "Map(String, String)", "plain"),
        (dict[str, float], "Map(String, Float64)", "plain"),
        (dict[str, int], "Map(String, Int64)", "plain"),
        (list[str], "Array(String)", "plain"),
        (dict[str, object], "String", "json"),
        (list[dict[str, object]], "String", "json"),
    ],
)
def test_column_types_from_annotations(annotation, expected, kind):
    col = column_for("f", annotation)
    assert col is not None
    assert (col.ch_type, col.kind) == (expected, kind)


def test_raw_bytes_stay_in_payload_only():
    assert column_for("raw", bytes) is None
    dl = EXAMPLES["DeadLetter"]
    assert isinstance(dl, DeadLetter)
    row = to_row(dl)
    assert "raw" not in row
    assert CODEC.decode(row["payload"].encode(), DeadLetter).raw == dl.raw


def test_ddl_uses_config_and_is_idempotent_by_construction():
    stmts = create_statements(ClickHouseConfig(database="hist", ttl_days=30))
    assert stmts[0] == "CREATE DATABASE IF NOT EXISTS `hist`"
    assert all(" IF NOT EXISTS " in s for s in stmts)
    tables = [s for s in stmts if "ReplacingMergeTree" in s and "`hist`.`" in s]
    assert len(tables) == 15
    assert all("INTERVAL 30 DAY" in s and "PARTITION BY toYYYYMM(event_time)" in s for s in tables)


def test_datetime_format_is_utc_milliseconds():
    from datetime import timedelta, timezone

    plus2 = timezone(timedelta(hours=2))
    assert format_datetime(datetime(2026, 3, 4, 7, 8, 9, 123456, tzinfo=plus2)) == (
        "2026-03-04 05:08:09.123"
    )
    assert format_datetime(datetime(2026, 3, 4, 5, 8, 9, tzinfo=UTC)) == "2026-03-04 05:08:09.000"


@pytest.mark.parametrize("event_type", sorted(EVENT_TYPES))
def test_payload_round_trips_through_the_codec(event_type):
    event = EXAMPLES[event_type]
    row = to_row(event)
    assert CODEC.decode(row["payload"].encode(), type(event)) == event
    assert orjson.loads(row["payload"])["event_type"] == event_type
    assert row["event_time"] == format_datetime(event.event_time)


def test_json_fields_are_json_strings():
    row = to_row(EXAMPLES["Decision"])
    assert isinstance(row["params"], str)
    assert orjson.loads(row["params"]) == EXAMPLES["Decision"].params  # type: ignore[attr-defined]
    assert row["expected_impact"] == {"cpu_usage": -20.0}


def test_config_validation():
    with pytest.raises(ValueError, match="needs clickhouse.url"):
        ClickHouseConfig(backend="server")
    with pytest.raises(ValueError):
        ClickHouseConfig(database="bad-name; DROP")
    with pytest.raises(ValueError):
        SinkConfig(batch_size=0)
    assert MetricSample(resource_id="x").event_type in TABLES
