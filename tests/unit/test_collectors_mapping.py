"""Series → MetricSample mapping: rates with resets, CPU, memory, network, p95, error ratio, ids."""

from __future__ import annotations

import math
import struct
from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from agents.collectors import (
    GaugeRule,
    RateRule,
    RemoteWriteConfig,
    RemoteWriteMapper,
    Selector,
    Series,
)
from agents.collectors.rules import histogram_quantile

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
T0 = int(NOW.timestamp() * 1000) - 60_000
STALE = struct.unpack("<d", struct.pack("<Q", 0x7FF0000000000002))[0]


def s(name: str, value: float, ts: int, **labels: str) -> Series:
    pairs = (("__name__", name), *sorted({"instance": "h1", **labels}.items()))
    return Series(pairs, ((ts, value),))


def run(mapper: RemoteWriteMapper, *requests: list[Series]):  # type: ignore[no-untyped-def]
    out = []
    for request in requests:
        mapped = mapper.map(request, NOW)
        mapper.commit(mapped)
        out.extend(mapped.samples)
    return out


def test_cpu_is_one_minus_the_average_idle_rate_over_cores() -> None:
    mapper = RemoteWriteMapper()
    reqs = [
        [
            s("node_cpu_seconds_total", 10 + 0.2 * i, T0 + 1000 * i, cpu="0", mode="idle"),
            s("node_cpu_seconds_total", 20 + 0.6 * i, T0 + 1000 * i, cpu="1", mode="idle"),
            s("node_cpu_seconds_total", 5 + 0.8 * i, T0 + 1000 * i, cpu="0", mode="user"),
        ]
        for i in range(3)
    ]
    samples = run(mapper, *reqs)
    assert [x.cpu_usage for x in samples] == [pytest.approx(60.0)] * 2  # first scrape: no rate
    assert samples[0].resource_id == "h1" and samples[0].resource_type == "host"


def test_counter_reset_counts_the_new_value_as_the_increase() -> None:
    rule = RateRule(field="request_rate", series=Selector(metrics=["c_total"]))
    mapper = RemoteWriteMapper(RemoteWriteConfig(rules=[rule]))
    samples = run(
        mapper,
        [s("c_total", 100, T0)],
        [s("c_total", 150, T0 + 1000)],  # +50/s
        [s("c_total", 20, T0 + 2000)],  # restarted: 0 → 20 in one second
        [s("c_total", 60, T0 + 4000)],  # +40 over 2 s
    )
    assert [x.request_rate for x in samples] == pytest.approx([50.0, 20.0, 20.0])


def test_memory_usage_is_the_complement_of_available_over_total() -> None:
    samples = run(
        RemoteWriteMapper(),
        [s("node_memory_MemAvailable_bytes", 3e9, T0), s("node_memory_MemTotal_bytes", 8e9, T0)],
    )
    assert samples[0].memory_usage == pytest.approx(62.5)


def test_network_rate_sums_devices_but_not_loopback() -> None:
    def req(i: int) -> list[Series]:
        ts = T0 + 2000 * i
        return [
            s("node_network_receive_bytes_total", 1000 * i, ts, device="eth0"),
            s("node_network_transmit_bytes_total", 500 * i, ts, device="eth0"),
            s("node_network_receive_bytes_total", 10**6 * i, ts, device="lo"),
        ]

    samples = run(RemoteWriteMapper(), req(0), req(1))
    assert samples[-1].extra == {"network_bytes_per_second": pytest.approx(750.0)}


def _http(i: int, ok: float, err: float, buckets: dict[str, float]) -> list[Series]:
    ts = T0 + 1000 * i
    out = [
        s("http_requests_total", ok * i, ts, code="200"),
        s("http_requests_total", err * i, ts, code="503"),
    ]
    out += [
        s("http_request_duration_seconds_bucket", v * i, ts, le=le) for le, v in buckets.items()
    ]
    return out


def test_request_rate_error_ratio_and_p95_latency_from_an_http_service() -> None:
    buckets = {"0.05": 50, "0.1": 80, "0.25": 90, "0.5": 100, "+Inf": 100}
    samples = run(RemoteWriteMapper(), _http(0, 40, 10, buckets), _http(1, 40, 10, buckets))
    last = samples[-1]
    assert last.request_rate == pytest.approx(50.0)
    assert last.error_rate == pytest.approx(0.2)
    assert last.network_latency_ms == pytest.approx(375.0)  # 0.25 + 0.25 × (95 − 90) / 10


def test_no_5xx_series_means_no_errors_not_a_missing_value() -> None:
    reqs = [[s("http_requests_total", 10 * i, T0 + 1000 * i, code="200")] for i in range(2)]
    assert run(RemoteWriteMapper(), *reqs)[-1].error_rate == 0.0


@pytest.mark.parametrize(
    ("buckets", "expected"),
    [
        ([(0.1, 0.0), (math.inf, 0.0)], None),  # no observations
        ([(0.1, 10.0), (0.2, 20.0), (math.inf, 20.0)], 0.19),
        ([(0.1, 10.0), (0.2, 10.0), (math.inf, 20.0)], 0.2),  # rank in +Inf: last finite bound
        ([(0.1, 10.0), (0.2, 20.0)], None),  # no +Inf bucket
    ],
)
def test_histogram_quantile(buckets, expected) -> None:  # type: ignore[no-untyped-def]
    assert histogram_quantile(0.95, buckets) == (
        None if expected is None else pytest.approx(expected)
    )


def test_values_are_clamped_to_the_fields_range() -> None:
    mapper = RemoteWriteMapper()
    samples = run(
        mapper,
        [s("node_cpu_seconds_total", 0, T0, cpu="0", mode="idle")],
        [s("node_cpu_seconds_total", 1.05, T0 + 1000, cpu="0", mode="idle")],  # jitter: 105 %
    )
    assert samples[0].cpu_usage == 0.0


def test_a_failed_publish_retried_maps_to_the_same_ids_and_values() -> None:
    mapper = RemoteWriteMapper()
    first = [s("node_cpu_seconds_total", 10, T0, cpu="0", mode="idle")]
    run(mapper, first)
    retry = [s("node_cpu_seconds_total", 10.5, T0 + 1000, cpu="0", mode="idle")]
    attempt = mapper.map(retry, NOW)  # Kafka failed: no commit
    again = mapper.map(retry, NOW)
    assert [x.model_dump() for x in attempt.samples] == [x.model_dump() for x in again.samples]
    assert attempt.samples[0].cpu_usage == pytest.approx(50.0)
    mapper.commit(again)
    duplicate = mapper.map(retry, NOW)  # acknowledged but the answer got lost: a duplicate
    assert duplicate.samples == [] and duplicate.counts["duplicate"] == 1


def test_ids_differ_by_resource_time_and_contributing_series() -> None:
    mapper = RemoteWriteMapper()
    a = mapper.map([s("cpu_usage", 1, T0), s("cpu_usage", 1, T0, instance="h2")], NOW)
    b = mapper.map([s("cpu_usage", 1, T0 + 1)], NOW)
    c = mapper.map([s("memory_usage", 1, T0)], NOW)
    ids = [x.event_id for x in a.samples + b.samples + c.samples]
    assert len(set(ids)) == 4


def test_samples_of_one_request_are_grouped_per_resource_and_timestamp() -> None:
    samples = run(
        RemoteWriteMapper(),
        [
            s("cpu_usage", 10, T0),
            s("memory_usage", 20, T0),
            s("cpu_usage", 30, T0, instance="h2"),
            Series((("__name__", "cpu_usage"), ("instance", "h1")), ((T0 + 1000, 11.0),)),
        ],
    )
    got = sorted((x.resource_id, x.event_time, x.cpu_usage, x.memory_usage) for x in samples)
    t0 = datetime.fromtimestamp(T0 / 1000, UTC)
    t1 = datetime.fromtimestamp((T0 + 1000) / 1000, UTC)
    # at t1 only the cpu series was sampled: memory is not repeated (missing is not stale data)
    assert got == [("h1", t0, 10, 20), ("h1", t1, 11, None), ("h2", t0, 30, None)]


def test_a_stale_marker_forgets_the_series() -> None:
    mapper = RemoteWriteMapper()
    run(mapper, [s("node_cpu_seconds_total", 10, T0, cpu="0", mode="idle")])
    run(mapper, [s("node_cpu_seconds_total", STALE, T0 + 1000, cpu="0", mode="idle")])
    assert len(mapper) == 0
    after = run(mapper, [s("node_cpu_seconds_total", 11, T0 + 2000, cpu="0", mode="idle")])
    assert after == []  # a fresh series: no rate from the pre-stale sample


def test_series_older_than_the_lookback_do_not_feed_aggregates_and_are_pruned() -> None:
    rule = GaugeRule(field="active_vms", series=Selector(metrics=["vms"]), aggregate="sum")
    mapper = RemoteWriteMapper(RemoteWriteConfig(rules=[rule], lookback_seconds=60))
    run(mapper, [s("vms", 3, T0, pool="a")])
    later = run(mapper, [s("vms", 2, T0 + 120_000, pool="b")])
    assert later[0].active_vms == 2
    assert mapper.prune(datetime.fromtimestamp((T0 + 130_000) / 1000, UTC)) == 1


def test_labels_type_and_cluster_come_from_configured_labels() -> None:
    cfg = RemoteWriteConfig(id_labels=["pod", "instance"], type_label="kind", copy_labels=["job"])
    [sample] = run(
        RemoteWriteMapper(cfg),
        [s("cpu_usage", 5, T0, pod="web-1", kind="pod", cluster="eu", job="web")],
    )
    assert (sample.resource_id, sample.resource_type, sample.cluster) == ("web-1", "pod", "eu")
    assert sample.labels == {"job": "web"}


def test_unmapped_series_are_counted_not_rejected() -> None:
    mapped = RemoteWriteMapper().map([s("go_goroutines", 7, T0)], NOW)
    assert mapped.counts["unmapped"] == 1 and not mapped.dead_letters


@pytest.mark.parametrize(
    "bad",
    [
        {"rules": [{"kind": "gauge", "field": "cpu", "series": {"metrics": ["x"]}}]},
        {"rules": [{"kind": "gauge", "field": "cpu_usage", "series": {"metrics": []}}]},
        {
            "rules": [
                {
                    "kind": "rate",
                    "field": "cpu_usage",
                    "series": {"metrics": ["x"], "match": {"mode": "("}},
                }
            ]
        },
        {"rules": [{"kind": "promql", "field": "cpu_usage", "expr": "rate(x[1m])"}]},
        {"id_labels": ["not-a-label"]},
    ],
)
def test_bad_configuration_is_refused_at_load(bad: dict) -> None:  # type: ignore[type-arg]
    with pytest.raises(ValidationError):
        RemoteWriteConfig.model_validate(bad)
