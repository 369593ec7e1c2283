"""Real Prometheus 2.42 scrapes node_exporter and a test exporter and remote-writes to the collect
role; the ingest role (real chDB) stores the samples. Also: malformed requests over real HTTP."""

from __future__ import annotations

import math
import statistics
import time
from pathlib import Path

import httpx
import pytest

from agents.collectors import Series, encode_write_request
from tests.integration.conftest import wait_until
from tests.integration.prom_stack import (
    AppExporter,
    node_exporter,
    prometheus,
    prometheus_config,
)

pytestmark = [pytest.mark.kafka, pytest.mark.slow]
HEADERS = {"Content-Type": "application/x-protobuf", "Content-Encoding": "snappy"}


def _meminfo_used_percent() -> float:
    info = {}
    for line in Path("/proc/meminfo").read_text().splitlines():
        key, _, rest = line.partition(":")
        info[key] = float(rest.split()[0])
    return 100 * (1 - info["MemAvailable"] / info["MemTotal"])


def test_prometheus_remote_write_lands_in_clickhouse_with_right_ids_and_values(
    worker_factory, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    ingest = worker_factory("ingest")
    collect = worker_factory("collect")
    exporter = AppExporter().start()
    node, node_port = node_exporter(tmp_path)
    prom = None
    try:
        config = prometheus_config(
            node_port=node_port,
            exporter_port=exporter.port,
            write_url=f"{collect.url}/api/v1/write",
        )
        prom, _ = prometheus(tmp_path, config)
        started = time.monotonic()

        def landed() -> list[dict[str, object]]:
            rows = ingest.sql(
                "SELECT resource_id, count() AS n, countIf(request_rate IS NOT NULL) AS rates, "
                "countIf(cpu_usage IS NOT NULL) AS cpus "
                "FROM novacron.metric_samples FINAL GROUP BY resource_id ORDER BY resource_id"
            )
            ok = {r["resource_id"]: r for r in rows}
            app, host = ok.get("svc-test"), ok.get("local-node")
            return rows if app and host and app["rates"] >= 5 and host["cpus"] >= 3 else []

        rows = wait_until(landed, timeout=30, what="samples of both targets in ClickHouse")
        assert time.monotonic() - started < 30
        assert {r["resource_id"] for r in rows} == {"svc-test", "local-node"}

        app = ingest.sql(
            "SELECT request_rate, error_rate, network_latency_ms, cost_per_hour, source, "
            "resource_type, labels FROM novacron.metric_samples FINAL "
            "WHERE resource_id = 'svc-test' AND request_rate IS NOT NULL ORDER BY event_time"
        )
        rates = [float(r["request_rate"]) for r in app]  # type: ignore[arg-type]
        served = exporter.ok_rate + exporter.error_rate
        assert statistics.median(rates) == pytest.approx(served, rel=0.05)
        assert sum(abs(r - served) <= 0.05 * served for r in rates) >= 0.8 * len(rates)
        errors = [float(r["error_rate"]) for r in app]  # type: ignore[arg-type]
        assert statistics.median(errors) == pytest.approx(0.2, rel=0.05)
        p95 = [float(r["network_latency_ms"]) for r in app]  # type: ignore[arg-type]
        assert statistics.median(p95) == pytest.approx(AppExporter.P95_MS, rel=0.05)
        assert app[0]["source"] == "prometheus" and app[0]["labels"] == {"job": "app"}
        cost = ingest.sql(
            "SELECT any(cost_per_hour) AS c FROM novacron.metric_samples FINAL "
            "WHERE resource_id = 'svc-test' AND cost_per_hour IS NOT NULL"
        )
        assert float(cost[0]["c"]) == 1.25  # type: ignore[arg-type]

        host = ingest.sql(
            "SELECT cpu_usage, memory_usage, extra FROM novacron.metric_samples FINAL "
            "WHERE resource_id = 'local-node' AND cpu_usage IS NOT NULL "
            "AND memory_usage IS NOT NULL "
            "ORDER BY event_time DESC LIMIT 5"
        )
        assert host and all(0 <= float(r["cpu_usage"]) <= 100 for r in host)  # type: ignore[arg-type]
        memory = float(host[0]["memory_usage"])  # type: ignore[arg-type]
        assert abs(memory - _meminfo_used_percent()) < 5  # what /proc/meminfo says right now
        assert all(
            "network_bytes_per_second" in r["extra"]
            for r in host  # type: ignore[operator]
        )
        metrics = httpx.get(f"{collect.url}/metrics", timeout=10).text
        assert 'novacron_collect_requests_total{code="204",endpoint="remote_write"}' in metrics
    finally:
        if prom is not None:
            prom.stop()
        node.stop()
        exporter.stop()


def test_malformed_requests_over_http_get_4xx_and_unfit_samples_go_to_the_dlq(
    worker_factory,
) -> None:  # type: ignore[no-untyped-def]
    ingest = worker_factory("ingest")
    collect = worker_factory("collect")
    url = f"{collect.url}/api/v1/write"
    now = int(time.time() * 1000)

    refused = [
        (b"garbage", HEADERS, 400),
        (encode_write_request([]), {"Content-Type": "application/json"}, 415),
        (b"\xff\xff\xff\xff\x0f" + b"\x00" * 8, HEADERS, 413),  # declares 4 GiB uncompressed
        (b"x" * (9 * 1024 * 1024), HEADERS, 413),  # over the 8 MiB body limit
    ]
    for body, headers, status in refused:
        resp = httpx.post(url, content=body, headers=headers, timeout=30)
        assert resp.status_code == status and resp.text.strip(), resp.text

    good = Series((("__name__", "cpu_usage"), ("instance", "http-good")), ((now, 33.0),))
    unfit = [
        Series((("__name__", "cpu_usage"), ("instance", "http-bad")), ((now, math.nan),)),
        Series((("instance", "http-bad"),), ((now, 1.0),)),
        Series((("__name__", "cpu_usage"), ("instance", "bad\x07id")), ((now, 1.0),)),
        Series((("__name__", "cpu_usage"), ("instance", "http-bad")), ((1, 1.0),)),
    ]
    resp = httpx.post(url, content=encode_write_request([*unfit, good]), headers=HEADERS)
    assert resp.status_code == 204, resp.text

    def stored() -> bool:
        n = ingest.scalar(
            "SELECT count() FROM novacron.metric_samples FINAL WHERE resource_id = 'http-good'"
        )
        letters = ingest.scalar(
            "SELECT count() FROM novacron.dead_letters FINAL "
            "WHERE source_topic = 'prometheus-remote-write'"
        )
        return n == 1 and letters == len(unfit) + len(refused)

    wait_until(stored, timeout=30, what="the good sample and every dead letter in ClickHouse")
    cpu = ingest.sql("SELECT cpu_usage FROM novacron.metric_samples WHERE resource_id='http-good'")
    assert float(cpu[0]["cpu_usage"]) == 33.0  # type: ignore[arg-type]
    kinds = ingest.sql(
        "SELECT error_kind, count() AS n FROM novacron.dead_letters FINAL "
        "WHERE source_topic = 'prometheus-remote-write' GROUP BY error_kind ORDER BY error_kind"
    )
    assert {r["error_kind"] for r in kinds} >= {
        "non_finite",
        "missing_name",
        "invalid_id_label",
        "timestamp_out_of_range",
        "decode",
    }
    assert httpx.get(f"{collect.url}/health", timeout=5).status_code == 200
    metrics = httpx.get(f"{collect.url}/metrics", timeout=10).text
    assert 'novacron_remote_write_rejected_samples_total{reason="non_finite"} 1.0' in metrics
