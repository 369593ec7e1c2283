"""Every event records when it was produced (`produced_at`); older records still decode."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from schemas import Decision, MetricSample
from schemas.avro import AVRO_DIR
from schemas.codec import Codec
from schemas.envelope import utc_now
from schemas.errors import SchemaViolation

CODEC = Codec()


def test_stamped_sets_now_and_never_keeps_the_inputs_value() -> None:
    claimed = datetime(2020, 1, 1, tzinfo=UTC)
    sample = MetricSample(resource_id="vm-1", cpu_usage=50, produced_at=claimed)
    before = utc_now()
    out = Decision.caused_by(sample, resource_id="svc", decision_type="scale_up").stamped()
    assert out.produced_at is not None and before <= out.produced_at <= utc_now()
    assert out.produced_at.microsecond % 1000 == 0  # the wire precision
    assert sample.stamped().produced_at != claimed  # a re-send is stamped anew
    assert Decision.caused_by(sample, resource_id="svc", decision_type="scale_up").produced_at \
        is None  # not inherited from the cause


@pytest.mark.parametrize("fmt", ["json", "avro"])
def test_produced_at_round_trips_in_both_wire_formats(fmt) -> None:  # type: ignore[no-untyped-def]
    sample = MetricSample(resource_id="vm-1", cpu_usage=50).stamped()
    decoded = CODEC.decode(CODEC.encode(sample, fmt), MetricSample)
    assert decoded.produced_at == sample.produced_at


def test_records_of_older_writers_decode_without_it() -> None:
    assert CODEC.decode(b'{"resource_id": "vm-1"}', MetricSample).produced_at is None
    old = json.loads((AVRO_DIR / "history" / "MetricSample.v1.avsc").read_text())
    assert "produced_at" not in {f["name"] for f in old["fields"]}
    writer = CODEC.registry.register(old)  # shipped in schemas/avro/history
    record = MetricSample(resource_id="vm-1", cpu_usage=7).model_dump(mode="python")
    record.pop("produced_at")
    raw = CODEC.registry.encode(record, writer)
    decoded = CODEC.decode(raw, MetricSample)
    assert decoded.cpu_usage == 7 and decoded.produced_at is None


def test_a_produced_at_outside_the_edge_window_is_refused() -> None:
    ahead = (utc_now() + timedelta(days=2)).isoformat()
    raw = json.dumps({"resource_id": "vm-1", "produced_at": ahead}).encode()
    with pytest.raises(SchemaViolation, match="ahead of now"):
        CODEC.decode(raw, MetricSample)
