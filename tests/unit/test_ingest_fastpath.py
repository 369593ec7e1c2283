"""The fast decode path of the ingest sink (`sinks.fastpath`) against the pydantic path: for every
input it defers, or pydantic accepts the record and every history column, payload included, is
the same; and it does take the common records (it cannot silently defer everything)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import Field, field_validator

from agents.ingest import record_event_id
from schemas import Decision, MetricSample
from schemas.avro import MAGIC
from schemas.codec import Codec
from schemas.edge import INT64_MAX, EdgeRules
from sinks.columns import event_columns, merge_rows
from sinks.fastpath import FastPath, fast_path_for, plan_model
from sinks.rows import payload_bytes

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
TIGHT = EdgeRules(max_object_keys=3, max_total_items=4, max_string_chars=12, max_age_days=2,
                  max_future_seconds=60)
"""Small edge limits, so that generated maps and times cross them often."""
CODECS = {"default": Codec(clock=lambda: NOW), "tight": Codec(clock=lambda: NOW, rules=TIGHT)}
FAST = fast_path_for(MetricSample)
assert FAST is not None


def position(i: int) -> str:
    return record_event_id("t.metrics", 2, 40 + i)


def differential(raws: list[bytes | None], codec: Codec) -> list[int]:
    """Assert the property for a batch; return the indices the fast path took."""
    assert FAST is not None
    edge = codec.pinned_edge()
    fast = FAST.decode(raws, edge, codec.max_bytes, position)
    slow = codec.decode_batch(raws, MetricSample, codec.max_bytes, position, edge)
    assert sorted(fast.taken + fast.deferred) == list(range(len(raws)))
    events = [slow[i] for i in fast.taken]
    for i, event in zip(fast.taken, events, strict=True):
        assert isinstance(event, MetricSample), f"took {raws[i]!r}, pydantic says {event}"
    expected = event_columns("MetricSample", events)  # type: ignore[arg-type]
    assert fast.columns.keys() == expected.keys()
    for name, column in expected.items():
        got = fast.columns[name]
        assert got == column, name
        assert [type(v) for v in got] == [type(v) for v in column], name  # 62.0, never 62
    assert fast.columns["payload"] == [payload_bytes(e) for e in events]  # type: ignore[arg-type]
    times = fast.columns["event_time"]
    assert all(t.tzinfo is UTC and t.microsecond % 1000 == 0 for t in times)
    return fast.taken


# --- generated records: valid ones in many spellings, then mutated ----------------------------

IDS = st.text(st.characters(exclude_categories=("Cs",)), max_size=12) | st.sampled_from(
    ["vm-1", "web-01", "", "x" * 64, "x" * 65, "x" * 257, "a\nb", "a\u2028b", "é-ü", "\u200b",
     "a\x7fb", "a\x9fb", " ", "\ufeffid", "日本"])
NUMBERS = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False), st.floats(0, 100),
    st.integers(-(2**64), 2**64), st.integers(0, 100), st.sampled_from(
        [0, 0.0, -0.0, 1, 1.0, 100, 100.0, 100.00000000000001, -1e-300, 1e-7, 1e16, 2**53,
         2**53 + 1, 2**63 - 1, 2**63, 2**64 - 1, True, False, None, "1", "NaN", [], {}]))


def _stamp(t: datetime, form: int) -> Any:
    iso = t.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="microseconds")
    return [iso + "Z", iso[:-3] + "Z", iso[:19] + "Z", iso + "+00:00", iso[:21] + "Z", iso,
            iso[:19] + "+01:00", iso[:19] + "-00:00", iso[:19] + "z", iso.replace("T", " ") + "Z",
            iso[:10], iso[:19] + ".1234567Z", int(t.timestamp()), t.timestamp() * 1000,
            iso[:19] + ".Z", "+" + iso + "Z", iso[:16] + "Z", str(int(t.timestamp()))][form]


TIMES = st.builds(
    _stamp,
    st.datetimes(NOW.replace(tzinfo=None) - timedelta(days=400),
                 NOW.replace(tzinfo=None) + timedelta(days=2), timezones=st.just(UTC))
    | st.sampled_from([NOW, NOW - timedelta(days=2), NOW - timedelta(days=2, milliseconds=1),
                       NOW + timedelta(seconds=60), NOW + timedelta(seconds=60, milliseconds=1),
                       NOW + timedelta(hours=1), NOW - timedelta(days=365)]),
    st.integers(0, 17))
MAPS = st.dictionaries(IDS, st.one_of(IDS, NUMBERS), max_size=5) | st.sampled_from(
    [{}, {"a": 1}, {"a": 1.5, "b": 2**60}, {"k": "v"}, {"k": {"nested": 1}}, {"k": [1]},
     {"k": None}, {"x" * 13: 1.0}, {"a\n": 1.0}, [], "x", None])


WITHIN = st.builds(  # inside both rule sets' windows, in the spellings the fast path takes
    _stamp, st.datetimes(NOW.replace(tzinfo=None) - timedelta(days=1),
                         NOW.replace(tzinfo=None) + timedelta(seconds=50), timezones=st.just(UTC)),
    st.integers(0, 4))
GOOD_IDS = st.text(st.characters(exclude_categories=("Cs", "Cc", "Cf", "Zl", "Zp")), max_size=10)
GOOD_MAPS = st.dictionaries(GOOD_IDS, st.floats(-1e6, 1e6) | st.integers(-1000, 1000),
                            max_size=3)
VALID: dict[str, st.SearchStrategy[Any]] = {
    "event_id": st.uuids().map(str), "event_time": WITHIN, "source": GOOD_IDS,
    "correlation_id": st.sampled_from(["", "c-1"]) | GOOD_IDS, "causation_id": GOOD_IDS,
    "produced_at": st.none() | WITHIN, "resource_id": GOOD_IDS.filter(bool),
    "resource_type": GOOD_IDS, "cluster": GOOD_IDS, "cpu_usage": st.none() | st.floats(0, 100),
    "memory_usage": st.integers(0, 100), "network_latency_ms": st.floats(0, 1e9),
    "request_rate": st.none() | st.floats(0, 1e6) | st.integers(0, 10**6),
    "error_rate": st.floats(0, 1), "active_vms": st.none() | st.integers(0, 10**6),
    "cost_per_hour": st.floats(0, 1e4),
    "labels": st.dictionaries(GOOD_IDS, GOOD_IDS, max_size=3), "extra": GOOD_MAPS,
    "event_type": st.just("MetricSample"), "unknown_field": st.none() | GOOD_MAPS,
}
HOSTILE: dict[str, st.SearchStrategy[Any]] = {
    **{k: IDS | NUMBERS | MAPS for k in VALID}, "event_time": TIMES, "produced_at": TIMES,
    **{k: NUMBERS for k in ("cpu_usage", "memory_usage", "network_latency_ms", "request_rate",
                            "error_rate", "active_vms", "cost_per_hour")},
    "labels": MAPS, "extra": MAPS,
    "event_type": st.sampled_from(["Decision", "metricsample", 1, None, ""]),
}


@st.composite
def records(draw: st.DrawFn) -> dict[str, Any]:
    """A MetricSample as a producer might write it: valid values, except for up to three fields
    that get a hostile value or go missing; optional fields left out, in any key order."""
    mutated = draw(st.sets(st.sampled_from(sorted(VALID)), max_size=3))
    sample = {k: draw(HOSTILE[k] if k in mutated else VALID[k]) for k in VALID}
    optional = [k for k in VALID if k not in ("resource_id", "event_time")]
    left_out = draw(st.sets(st.sampled_from(optional)))
    if mutated and draw(st.booleans()):
        left_out.add(sorted(mutated)[0])  # a missing required field, too
    keys = [k for k in sample if k not in left_out]
    if draw(st.booleans()):
        keys = draw(st.permutations(keys))
    return {k: sample[k] for k in keys}


def encode(doc: Any) -> bytes:
    try:
        return orjson.dumps(doc)
    except TypeError:  # integers beyond 64 bits: the standard library writes them
        return json.dumps(doc, ensure_ascii=False).encode()


def canonical(i: int, **fields: Any) -> dict[str, Any]:
    """A valid sample as the project's own producers encode it (every field, model order)."""
    sample = MetricSample(resource_id=f"vm-{i}", event_time=NOW - timedelta(seconds=i), **fields)
    return orjson.loads(CODECS["default"].encode(sample))  # type: ignore[no-any-return]


@settings(max_examples=400)
@given(st.lists(records(), min_size=1, max_size=6), st.sampled_from(sorted(CODECS)))
def test_generated_records_are_deferred_or_stored_exactly_as_pydantic_stores_them(
        docs: list[dict[str, Any]], rules: str) -> None:
    differential([encode(d) for d in docs], CODECS[rules])


HOSTILE_TEXT = [  # raw spellings a dict cannot make: literals, duplicates, broken JSON
    b'{"resource_id":"vm-1","cpu_usage":NaN,"event_time":"%s"}',
    b'{"resource_id":"vm-1","cpu_usage":Infinity,"event_time":"%s"}',
    b'{"resource_id":"vm-1","cpu_usage":-Infinity,"event_time":"%s"}',
    b'{"resource_id":"vm-1","cpu_usage":1e400,"event_time":"%s"}',
    b'{"resource_id":"vm-1","active_vms":99999999999999999999999,"event_time":"%s"}',
    b'{"resource_id":"vm-1","active_vms":18446744073709551615,"event_time":"%s"}',
    b'{"resource_id":"vm-1","active_vms":9223372036854775808,"event_time":"%s"}',
    b'{"resource_id":"vm-1","cpu_usage":101,"cpu_usage":5,"event_time":"%s"}',
    b'{"resource_id":"vm-1","cpu_usage":5,"cpu_usage":true,"event_time":"%s"}',
    b'{"resource_id":"vm-1","resource_id":"vm\\n2","event_time":"%s"}',
    b'{"resource_id":"vm-1","event_time":"%s","event_time":"2001-01-01T00:00:00Z"}',
    b'{"resource_id":"vm-1","event_type":"Decision","event_type":"MetricSample","event_time":"%s"}',
    b'{"resource_id":"vm-1","labels":{"a":"1","a":"\\u0000"},"event_time":"%s"}',
    b'{"resource_id":"\\ud800","event_time":"%s"}',
    b'{"resource_id":"vm-1","labels":{"k":"\\udfff"},"event_time":"%s"}',
    b'{"resource_id":"vm-1","event_time":"%s"',
    b'{"resource_id":"vm-1","event_time":"%s"} trailing',
    b'{"resource_id":"vm-\xff","event_time":"%s"}',
    b'  {"resource_id":"vm-1","event_time":"%s"}  ',
    b'[{"resource_id":"vm-1","event_time":"%s"}]',
    b'"%s"', b"null", b"[]", b"{}", b"", b"0", b"true",
    MAGIC + b'{"resource_id":"vm-1","event_time":"%s"}',
]


@pytest.mark.parametrize("rules", sorted(CODECS))
def test_hostile_spellings_are_deferred_or_stored_exactly(rules: str) -> None:
    stamp = b"2026-06-01T11:59:00.123Z"
    raws: list[bytes | None] = [t.replace(b"%s", stamp) for t in HOSTILE_TEXT]
    taken = differential([*raws, None, b"x" * (CODECS[rules].max_bytes + 1)], CODECS[rules])
    assert 7 in taken and 11 in taken  # duplicate keys: the last wins, for both paths alike


def test_every_field_mutated_in_a_canonical_record_is_deferred_or_stored_exactly() -> None:
    base = canonical(0, cpu_usage=71.5, labels={"tier": "web"}, extra={"q": 2.5})
    bad_values: list[Any] = [None, True, False, "", "1", 1, 1.5, -1, -0.0, 2**63, 101.0, [], {},
                             {"a": 1}, "x" * 300, "a\tb", "2026-06-01T11:00:00Z", 1.0e-320]
    raws = [encode({**base, name: value}) for name in base for value in bad_values]
    raws += [encode({k: v for k, v in base.items() if k != name}) for name in base]
    differential(raws, CODECS["default"])
    differential(raws, CODECS["tight"])


# --- it takes what it should ------------------------------------------------------------------

def test_the_common_records_take_the_fast_path() -> None:
    codec = CODECS["default"]
    own = [codec.encode(MetricSample(resource_id=f"vm-{i % 500}", cpu_usage=float(i % 100),
                                     memory_usage=50.0, request_rate=float(i % 1000),
                                     event_time=NOW - timedelta(minutes=i))) for i in range(50)]
    partial = [orjson.dumps({"resource_id": "web-01", "cluster": "prod", "cpu_usage": 71.5,
                             "memory_usage": 62, "request_rate": 340, "labels": {"az": "b"},
                             "extra": {"gc_ms": 12}, "event_time": t}) for t in
               ("2026-06-01T11:00:00Z", "2026-06-01T11:00:00.5Z", "2026-06-01T11:00:00+00:00",
                "2026-06-01T11:00:00.123456Z")]
    raws: list[bytes | None] = [*own, *partial]
    assert differential(raws, codec) == list(range(len(raws)))
    batch = FAST.decode(raws, codec.pinned_edge(), codec.max_bytes, position)
    assert batch.columns["event_id"][50] == position(50)  # no id: the position's, as pydantic
    assert batch.columns["correlation_id"][50] == position(50)  # the chain starts here


def test_avro_other_types_and_tombstones_are_deferred() -> None:
    codec = CODECS["default"]
    sample = MetricSample(resource_id="vm-1", event_time=NOW)
    decision = Decision(resource_id="svc", decision_type="scale_up", event_time=NOW)
    raws = [codec.encode(sample, "avro"), codec.encode(decision), None, b""]
    batch = FAST.decode(raws, codec.pinned_edge(), codec.max_bytes, position)
    assert batch.taken == [] and batch.deferred == [0, 1, 2, 3]


# --- the plan is the model's -------------------------------------------------------------------

def test_the_plan_is_derived_from_the_model() -> None:
    plans = {p.name: p for p in plan_model(MetricSample)}
    assert list(plans) == list(MetricSample.model_fields)
    for name, info in MetricSample.model_fields.items():
        bounds = {type(m).__name__: m for m in info.metadata}
        if "Ge" in bounds:
            assert plans[name].lo == bounds["Ge"].ge
        if "Le" in bounds:
            assert plans[name].hi == bounds["Le"].le
        if "MaxLen" in bounds:
            assert plans[name].max_len == bounds["MaxLen"].max_length
    assert plans["active_vms"].hi == INT64_MAX and type(plans["active_vms"].hi) is int
    assert plans["resource_id"].min_len == 1 and plans["resource_type"].default == "vm"


class FreeText(MetricSample):
    note: str = Field(default="", max_length=10)  # free text, not an Identifier


class Validated(MetricSample):
    @field_validator("cluster")
    @classmethod
    def _lower(cls, value: str) -> str:
        return value.lower()


class Forbidding(MetricSample, extra="forbid"):
    pass


@pytest.mark.parametrize("model", [FreeText, Validated, Forbidding, Decision])
def test_what_the_plan_does_not_know_turns_the_fast_path_off(model: type[MetricSample]) -> None:
    assert fast_path_for(model) is None


def test_merge_rows_keeps_record_order() -> None:
    merged = merge_rows({"a": [1, 3], "payload": [b"1", b"3"]}, [0, 5],
                        {"a": [2], "payload": [b"2"]}, [2])
    assert merged == {"a": [1, 2, 3], "payload": [b"1", b"2", b"3"]}


def test_a_fast_path_instance_for_the_model_is_what_the_sink_uses() -> None:
    assert isinstance(FAST, FastPath) and FAST.model is MetricSample
