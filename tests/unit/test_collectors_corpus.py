"""A corpus of malformed and unfit remote-write requests against the collector host (fake Kafka):
undecodable requests get a 4xx with a reason, unfit samples are dropped, counted and dead-lettered
while their good neighbours are published, and the receiver keeps serving."""

from __future__ import annotations

import math
import random
import struct
import time
from dataclasses import dataclass, field

import cramjam
import pytest
from prometheus_client import CollectorRegistry

from agents.collectors import (
    CollectorConfig,
    RemoteWriteConfig,
    Series,
    encode_write_request,
    remote_pb2,  # type: ignore[attr-defined]
)
from schemas import DeadLetter, MetricSample
from streams.collect import CollectorHost, CollectorMetrics, MemoryPublisher

HEADERS = {"Content-Type": "application/x-protobuf", "Content-Encoding": "snappy"}
NOW_MS = int(time.time() * 1000)
STALE = struct.unpack("<d", struct.pack("<Q", 0x7FF0000000000002))[0]


def good(n: int = 0, ts: int = NOW_MS) -> Series:
    """A neighbour that must be stored: cpu_usage of resource good-<n>."""
    return Series((("__name__", "cpu_usage"), ("instance", f"good-{n}")), ((ts, 42.0),))


def cpu(instance: str, *samples: tuple[int, float], extra: tuple = ()) -> Series:
    labels = (("__name__", "cpu_usage"), ("instance", instance), *extra)
    return Series(labels, tuple(samples))


def body(*series: Series) -> bytes:
    return encode_write_request(list(series))


def raw_request(build) -> bytes:  # type: ignore[no-untyped-def]
    req = remote_pb2.WriteRequest()
    build(req)
    return req.SerializeToString()


@dataclass
class Case:
    name: str
    body: bytes
    status: int
    reason: str = ""  # substring of the answer (4xx) or a rejection reason (2xx)
    headers: dict[str, str] = field(default_factory=lambda: dict(HEADERS))
    stored: tuple[str, ...] = ()  # resource ids that must be published


def _bomb() -> bytes:
    # a snappy block declaring 2 GiB of output in a 20-byte body
    length, out = 2**31, bytearray()
    while length >= 0x80:
        out.append((length & 0x7F) | 0x80)
        length >>= 7
    out.append(length)
    return bytes(out) + b"\x00" * 16


def _bad_utf8() -> bytes:
    # Label{name="instance", value=b"\xff\xfe"} inside TimeSeries inside WriteRequest, by hand
    label = b"\x0a\x08instance\x12\x02\xff\xfe"
    series = b"\x0a" + bytes([len(label)]) + label
    return bytes(cramjam.snappy.compress_raw(b"\x0a" + bytes([len(series)]) + series))


_rng = random.Random(13)
_valid = raw_request(lambda r: r.timeseries.add().labels.add(name="__name__", value="cpu_usage"))

UNDECODABLE = [
    Case("not snappy", b"this is not snappy at all \xff\xff\xff", 400, "snappy"),
    Case("empty body", b"", 400, "snappy"),
    Case("snappy of garbage", bytes(cramjam.snappy.compress_raw(b"\xff" * 12)), 400, "protobuf"),
    Case("truncated protobuf", bytes(cramjam.snappy.compress_raw(_valid[:-3])), 400, "protobuf"),
    Case("invalid UTF-8 label", _bad_utf8(), 400, "protobuf"),
    Case("framed snappy stream", bytes(cramjam.snappy.compress(_valid)), 400, ""),
    Case(
        "JSON body",
        b'{"series": []}',
        415,
        "Content-Type",
        headers={"Content-Type": "application/json", "Content-Encoding": "snappy"},
    ),
    Case(
        "no content type", body(good()), 415, "Content-Type", headers={"Content-Encoding": "snappy"}
    ),
    Case(
        "gzip encoding",
        body(good()),
        415,
        "Content-Encoding",
        headers={"Content-Type": "application/x-protobuf", "Content-Encoding": "gzip"},
    ),
    Case(
        "no content encoding",
        body(good()),
        415,
        "Content-Encoding",
        headers={"Content-Type": "application/x-protobuf"},
    ),
    Case(
        "remote-write 2.0 message",
        body(good()),
        415,
        "io.prometheus.write.v2.Request",
        headers={
            "Content-Type": "application/x-protobuf;proto=io.prometheus.write.v2.Request",
            "Content-Encoding": "snappy",
        },
    ),
    Case("decompression bomb", _bomb(), 413, "exceeds"),
    Case(
        "too many samples",
        body(cpu("a", *[(NOW_MS - i, 1.0) for i in range(60_000)])),
        413,
        "more than 50000",
    ),
    Case(
        "oversized body",
        body(*[cpu(_rng.randbytes(16).hex(), (NOW_MS, 1.0)) for _ in range(12_000)]),
        413,
        "exceeds",
    ),
]

HOUR_MS = 3_600_000
UNFIT = [
    Case(
        "NaN value",
        body(cpu("a", (NOW_MS, math.nan)), good()),
        204,
        "non_finite",
        stored=("good-0",),
    ),
    Case(
        "+Inf and -Inf",
        body(cpu("a", (NOW_MS, math.inf), (NOW_MS + 1, -math.inf)), good()),
        204,
        "non_finite",
        stored=("good-0",),
    ),
    Case(
        "no __name__",
        body(Series((("instance", "a"),), ((NOW_MS, 1.0),)), good()),
        204,
        "missing_name",
        stored=("good-0",),
    ),
    Case(
        "invalid label name",
        body(cpu("a", (NOW_MS, 1.0), extra=(("bad-name", "x"),)), good()),
        204,
        "invalid_label_name",
        stored=("good-0",),
    ),
    Case(
        "duplicate label",
        body(cpu("a", (NOW_MS, 1.0), extra=(("instance", "b"),)), good()),
        204,
        "duplicate_label",
        stored=("good-0",),
    ),
    Case(
        "invalid metric name",
        body(Series((("__name__", "1cpu"), ("instance", "a")), ((NOW_MS, 1.0),)), good()),
        204,
        "invalid_metric_name",
        stored=("good-0",),
    ),
    Case(
        "control characters in id",
        body(cpu("web\n1", (NOW_MS, 1.0)), good()),
        204,
        "invalid_id_label",
        stored=("good-0",),
    ),
    Case(
        "overlong id",
        body(cpu("x" * 300, (NOW_MS, 1.0)), good()),
        204,
        "invalid_id_label",
        stored=("good-0",),
    ),
    Case(
        "missing id label",
        body(Series((("__name__", "cpu_usage"), ("job", "a")), ((NOW_MS, 1.0),)), good()),
        204,
        "missing_id_label",
        stored=("good-0",),
    ),
    Case(
        "timestamp zero and negative",
        body(cpu("a", (0, 1.0), (-5, 1.0)), good()),
        204,
        "timestamp_out_of_range",
        stored=("good-0",),
    ),
    Case(
        "timestamp in the year 2200",
        body(cpu("a", (7_258_118_400_000, 1.0)), good()),
        204,
        "timestamp_out_of_range",
        stored=("good-0",),
    ),
    Case(
        "timestamp decades ago",
        body(cpu("a", (NOW_MS - 30 * 365 * 24 * HOUR_MS, 1.0)), good()),
        204,
        "timestamp_out_of_range",
        stored=("good-0",),
    ),
    Case(
        "out of order in one series",
        body(cpu("a", (NOW_MS, 1.0), (NOW_MS - 1000, 2.0)), good()),
        204,
        "out_of_order",
        stored=("good-0", "a"),
    ),
    Case(
        "native histogram",
        body(Series((("__name__", "h"), ("instance", "a")), (), histograms=(NOW_MS,)), good()),
        204,
        "native_histogram",
        stored=("good-0",),
    ),
]


def make_host(**rw: object) -> tuple[CollectorHost, MemoryPublisher]:
    publisher = MemoryPublisher()
    config = CollectorConfig(remote_write=RemoteWriteConfig(**rw))  # type: ignore[arg-type]
    return CollectorHost(
        config, publisher, metrics=CollectorMetrics(CollectorRegistry())
    ), publisher


def test_corpus_is_large_enough() -> None:
    assert len(UNDECODABLE) + len(UNFIT) >= 12


@pytest.mark.parametrize("case", UNDECODABLE, ids=lambda c: c.name)
async def test_undecodable_request_gets_4xx_with_reason_and_a_dead_letter(case: Case) -> None:
    host, publisher = make_host(max_body_bytes=320 * 1024, max_decoded_bytes=2 * 1024 * 1024)
    status, message = await host.remote_write(case.headers, case.body)
    assert status == case.status, message
    assert case.reason in message and message
    [letter] = publisher.events
    assert isinstance(letter, DeadLetter) and letter.raw_size == len(case.body)
    assert letter.source_topic == "prometheus-remote-write" and str(status) in letter.reason
    # the receiver keeps working: a good request right after is stored
    assert (await host.remote_write(HEADERS, body(good(7))))[0] == 204
    assert [e.resource_id for e in publisher.events if isinstance(e, MetricSample)] == ["good-7"]


@pytest.mark.parametrize("case", UNFIT, ids=lambda c: c.name)
async def test_unfit_samples_are_dropped_counted_and_dead_lettered(case: Case) -> None:
    host, publisher = make_host()
    status, message = await host.remote_write(case.headers, case.body)
    assert status == case.status, message
    samples = [e for e in publisher.events if isinstance(e, MetricSample)]
    letters = [e for e in publisher.events if isinstance(e, DeadLetter)]
    assert sorted(s.resource_id for s in samples) == sorted(case.stored)
    assert all(s.cpu_usage is not None and math.isfinite(s.cpu_usage) for s in samples)
    assert [d.error_kind for d in letters] == [case.reason]
    assert case.reason in letters[0].reason and letters[0].raw
    rejected = host.metrics.rejected.labels(case.reason)._value.get()
    assert rejected >= 1


async def test_staleness_markers_are_skipped_not_rejected() -> None:
    host, publisher = make_host()
    status, _ = await host.remote_write(HEADERS, body(cpu("a", (NOW_MS, STALE)), good()))
    assert status == 204
    assert [e.resource_id for e in publisher.events] == ["good-0"]  # no dead letter
    assert host.metrics.samples.labels("stale")._value.get() == 1


async def test_older_than_accepted_sample_from_an_earlier_request_is_out_of_order() -> None:
    host, publisher = make_host()
    assert (await host.remote_write(HEADERS, body(cpu("a", (NOW_MS, 1.0)))))[0] == 204
    assert (await host.remote_write(HEADERS, body(cpu("a", (NOW_MS - 5000, 2.0)), good())))[
        0
    ] == 204
    kinds = [e.error_kind for e in publisher.events if isinstance(e, DeadLetter)]
    assert kinds == ["out_of_order"]
    assert [e.resource_id for e in publisher.events if isinstance(e, MetricSample)] == [
        "a",
        "good-0",
    ]


async def test_a_request_mixing_every_kind_of_unfit_sample_still_stores_the_good_ones() -> None:
    host, publisher = make_host()
    mixed = [s for case in UNFIT for s in _series_of(case.body) if not _is_good(s)]
    status, _ = await host.remote_write(HEADERS, body(*mixed, good(1), good(2)))
    assert status == 204
    stored = {e.resource_id for e in publisher.events if isinstance(e, MetricSample)}
    assert {"good-1", "good-2"} <= stored
    reasons = {e.error_kind for e in publisher.events if isinstance(e, DeadLetter)}
    assert reasons == {c.reason for c in UNFIT}


def _series_of(raw: bytes) -> list[Series]:
    from agents.collectors import decode_write_request

    return decode_write_request(
        raw, *HEADERS.values(), max_body_bytes=10**8, max_decoded_bytes=10**8
    )


def _is_good(s: Series) -> bool:
    return dict(s.labels).get("instance", "").startswith("good-")


async def test_values_that_overflow_after_scaling_give_no_field_and_no_crash() -> None:
    from agents.collectors import GaugeRule, Selector

    rule = GaugeRule(field="extra.huge", series=Selector(metrics=["huge"]), scale=1e300)
    host, publisher = make_host(rules=[rule])
    big = Series((("__name__", "huge"), ("instance", "a")), ((NOW_MS, 1e300),))
    assert (await host.remote_write(HEADERS, body(big)))[0] == 204
    assert publisher.events == []


async def test_a_request_the_mapper_cannot_process_is_refused_not_retried_forever(
    monkeypatch,
) -> None:  # type: ignore[no-untyped-def]
    host, publisher = make_host()

    def broken(*args: object) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr(host.mapper, "map", broken)
    status, message = await host.remote_write(HEADERS, body(good()))
    assert status == 400 and "RuntimeError: a bug" in message
    [letter] = publisher.events
    assert isinstance(letter, DeadLetter) and letter.error_kind == "processing"
