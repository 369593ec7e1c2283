"""Kafka stops while Prometheus remote-writes: the collector answers 503, Prometheus retries, and
once Kafka is back every sample is stored exactly once, with no gap.

The test runs its own broker on another port (the shared one must never be stopped), and points
the collect and ingest roles at it."""

from __future__ import annotations

import asyncio
import shutil
import socket
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from streams.kafka_local import KafkaLocal, LocalKafkaConfig
from streams.settings import KafkaConfig
from streams.topics import create_topics
from tests.integration.conftest import WorkerProcess, wait_until
from tests.integration.prom_stack import AppExporter, prometheus, prometheus_config

pytestmark = [pytest.mark.kafka, pytest.mark.slow]


def _free_pair() -> int:
    """A port whose successor (the controller port) is free too."""
    for _ in range(50):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port + 1))
                return port
            except OSError:
                continue
    raise RuntimeError("no two consecutive free ports")


@pytest.fixture
def own_kafka() -> Iterator[KafkaLocal]:
    """A second single-node broker for this test only (stopped and removed afterwards)."""
    kafka = KafkaLocal(LocalKafkaConfig(port=_free_pair(), heap="512m"))
    kafka.start(fresh=True)
    yield kafka
    kafka.stop()
    shutil.rmtree(kafka.cfg.run_dir, ignore_errors=True)


def _rejections_503(url: str) -> float:
    for line in httpx.get(f"{url}/metrics", timeout=10).text.splitlines():
        if line.startswith('novacron_collect_requests_total{code="503",endpoint="remote_write"}'):
            return float(line.split()[-1])
    return 0.0


def test_kafka_outage_during_remote_write_loses_nothing_and_stores_once(
    own_kafka: KafkaLocal, tmp_path: Path
) -> None:
    cfg = KafkaConfig(bootstrap=own_kafka.bootstrap, topic_prefix=f"t{uuid.uuid4().hex[:8]}.")
    asyncio.run(create_topics(cfg))
    work = tmp_path / "work"
    ingest = WorkerProcess("ingest", cfg, work).start()
    collect = WorkerProcess(
        "collect", cfg, work, extra_env={"NOVACRON_COLLECT__KAFKA_TIMEOUT_SECONDS": "3"}
    ).start()
    exporter = AppExporter().start()
    prom = None
    query = "FROM novacron.metric_samples FINAL WHERE resource_id = 'svc-test'"
    try:
        config = prometheus_config(
            node_port=None, exporter_port=exporter.port, write_url=f"{collect.url}/api/v1/write"
        )
        prom, _ = prometheus(tmp_path, config)
        wait_until(
            lambda: ingest.scalar(f"SELECT count() {query}") >= 5,
            timeout=60,
            what="samples before the outage",
        )

        down_at = datetime.now(UTC)
        own_kafka.stop()
        wait_until(
            lambda: _rejections_503(collect.url) >= 2,
            timeout=60,
            what="503 answers while Kafka is down (Prometheus retrying)",
        )
        time.sleep(5)
        own_kafka.start()
        up_at = datetime.now(UTC)

        def caught_up() -> bool:
            newest = ingest.sql(f"SELECT toUnixTimestamp64Milli(max(event_time)) AS t {query}")
            return int(newest[0]["t"]) / 1000 > up_at.timestamp() + 5  # type: ignore[call-overload]

        wait_until(caught_up, timeout=120, what="samples from after the outage")

        stats = ingest.sql(f"SELECT count() AS n, uniqExact(event_id) AS ids {query}")[0]
        assert stats["n"] == stats["ids"], stats  # every sample exactly once
        times = [
            int(r["t"])  # type: ignore[call-overload]
            for r in ingest.sql(
                f"SELECT DISTINCT toUnixTimestamp64Milli(event_time) AS t {query} "
                "AND request_rate IS NOT NULL ORDER BY t"
            )
        ]
        gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
        assert max(gaps) < 2500, f"a hole of {max(gaps)} ms: samples were lost"
        outage = [t for t in times if down_at.timestamp() * 1000 <= t <= up_at.timestamp() * 1000]
        assert len(outage) >= 0.8 * (up_at - down_at).total_seconds()  # scraped during the outage
        assert _rejections_503(collect.url) >= 2
    finally:
        if prom is not None:
            prom.stop()
        exporter.stop()
        collect.stop()
        ingest.stop()
