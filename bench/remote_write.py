"""Benchmark: Prometheus remote-write requests of 1,000 series through the collector (decode,
map, publish to `metrics`, wait for Kafka's acks) on the real broker, vs the raw aiokafka produce
rate of the same MetricSample bytes measured in the same run.

Each request carries one scrape of 100 hosts × 10 series (4 CPU idle counters, memory available
and total, network rx/tx, HTTP 200/503 counters), so it maps to 100 MetricSamples with CPU,
memory, network, request rate and error ratio.

    python bench/remote_write.py [--requests 300]   (needs `novacron kafka start`)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

from prometheus_client import CollectorRegistry

from agents.collectors import CollectorConfig, Series, decode_write_request, encode_write_request
from agents.collectors.mapper import RemoteWriteMapper
from schemas.codec import Codec
from streams import kafka_clients
from streams.collect import CollectorHost, CollectorMetrics, KafkaPublisher
from streams.settings import KafkaConfig, Settings
from streams.topics import create_topics

RESULTS = Path(__file__).with_name("results")
HEADERS = {"Content-Type": "application/x-protobuf", "Content-Encoding": "snappy"}
HOSTS = 100


def scrape(i: int, ts: int) -> list[Series]:
    """One scrape of every host at `ts`: 10 series per host, counters growing with i."""
    out: list[Series] = []
    for h in range(HOSTS):
        base = (("instance", f"host-{h:03d}"), ("job", "node"))

        def series(name: str, value: float, *labels: tuple[str, str], base: tuple = base) -> Series:
            return Series((("__name__", name), *sorted(base + labels)), ((ts, value),))

        out += [
            series("node_cpu_seconds_total", 0.6 * i, ("cpu", str(c)), ("mode", "idle"))
            for c in range(4)
        ]
        out += [
            series("node_memory_MemAvailable_bytes", 3e9 + h),
            series("node_memory_MemTotal_bytes", 8e9),
            series("node_network_receive_bytes_total", 1e4 * i, ("device", "eth0")),
            series("node_network_transmit_bytes_total", 5e3 * i, ("device", "eth0")),
            series("http_requests_total", 90.0 * i, ("code", "200")),
            series("http_requests_total", 10.0 * i, ("code", "503")),
        ]
    return out


def bodies(n: int) -> list[bytes]:
    start = int(time.time() * 1000) - (n + 1) * 1000
    return [encode_write_request(scrape(i, start + 1000 * i)) for i in range(n + 1)]


async def collector_rate(settings: Settings, requests: list[bytes]) -> dict[str, float]:
    publisher = KafkaPublisher(settings, Codec(), timeout=30)
    host = CollectorHost(
        CollectorConfig(), publisher, metrics=CollectorMetrics(CollectorRegistry())
    )
    status, _ = await host.remote_write(HEADERS, requests[0])  # warm-up, first counter samples
    assert status == 204
    warm = host.metrics.published._value.get()
    latencies = []
    started = time.perf_counter()
    for body in requests[1:]:
        t = time.perf_counter()
        status, message = await host.remote_write(HEADERS, body)
        assert status == 204, message
        latencies.append(time.perf_counter() - t)
    elapsed = time.perf_counter() - started
    await publisher.stop()
    published = host.metrics.published._value.get() - warm
    n = len(requests) - 1
    return {
        "requests": n,
        "seconds": elapsed,
        "series_samples_per_s": n * HOSTS * 10 / elapsed,
        "metric_samples_per_s": published / elapsed,
        "metric_samples": published,
        "request_p50_ms": statistics.median(latencies) * 1000,
        "request_p99_ms": sorted(latencies)[int(0.99 * (len(latencies) - 1))] * 1000,
    }


def cpu_only(requests: list[bytes]) -> dict[str, float]:
    """Decode and map without Kafka: where the time goes."""
    mapper = RemoteWriteMapper()
    now = datetime.now(UTC)
    decode = mapping = 0.0
    for body in requests:
        t = time.perf_counter()
        series = decode_write_request(
            body, *HEADERS.values(), max_body_bytes=1 << 26, max_decoded_bytes=1 << 28
        )
        decode += time.perf_counter() - t
        t = time.perf_counter()
        mapper.commit(mapper.map(series, now))
        mapping += time.perf_counter() - t
    n = len(requests)
    return {"decode_ms_per_request": decode / n * 1000, "map_ms_per_request": mapping / n * 1000}


async def raw_produce(cfg: KafkaConfig, values: list[bytes], batch: int) -> float:
    """Baseline: aiokafka produce of the same bytes, acks=all, one awaited gather per request."""
    producer = kafka_clients.producer(
        cfg, acks="all", linger_ms=5, max_batch_size=256 * 1024
    )
    await producer.start()
    started = time.perf_counter()
    try:
        for i in range(0, len(values), batch):
            futures = [
                await producer.send(cfg.topic("metrics"), v, key=f"host-{j % HOSTS}".encode())
                for j, v in enumerate(values[i : i + batch])
            ]
            await asyncio.gather(*futures)
    finally:
        await producer.stop()
    return len(values) / (time.perf_counter() - started)


async def main(n: int) -> dict[str, object]:
    cfg = KafkaConfig(topic_prefix=f"benchrw{uuid.uuid4().hex[:6]}.")
    await create_topics(cfg)
    try:
        return await _measure(cfg, n)
    finally:
        await _delete_topics(cfg)


async def _delete_topics(cfg: KafkaConfig) -> None:
    admin = kafka_clients.admin(cfg)
    await admin.start()
    try:
        mine = [t for t in await admin.list_topics() if t.startswith(cfg.topic_prefix)]
        if mine:
            await admin.delete_topics(mine)
    finally:
        await admin.close()


async def _measure(cfg: KafkaConfig, n: int) -> dict[str, object]:
    settings = Settings(kafka=cfg)
    requests = bodies(n)
    ours = await collector_rate(settings, requests)
    mapper = RemoteWriteMapper()
    now = datetime.now(UTC)
    codec = Codec()
    values = []
    for body in requests:
        mapped = mapper.map(
            decode_write_request(
                body, *HEADERS.values(), max_body_bytes=1 << 26, max_decoded_bytes=1 << 28
            ),
            now,
        )
        mapper.commit(mapped)
        values += [codec.encode(s) for s in mapped.samples]
    raw = await raw_produce(cfg, values, HOSTS)
    return {
        "benchmark": "remote_write",
        "series_per_request": HOSTS * 10,
        "request_bytes": statistics.median(len(b) for b in requests),
        "collector": ours,
        "cpu_only": cpu_only(requests),
        "baseline_raw_produce_per_s": raw,
        "ratio_to_raw_produce": ours["metric_samples_per_s"] / raw,
        "measured_at": datetime.now(UTC).isoformat(),
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=300)
    result = asyncio.run(main(parser.parse_args().requests))
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "remote_write.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
