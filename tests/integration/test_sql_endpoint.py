"""/sql on a real ingest worker (real Kafka, real chDB, real regopy): the attack corpus is refused
for every caller, a viewer reads the history, and a slow query does not hold up the inserts."""

from __future__ import annotations

import asyncio
import threading
import uuid

import httpx
import pytest
from aiokafka import AIOKafkaProducer

from schemas import MetricSample
from schemas.codec import Codec
from tests.integration.conftest import ADMIN_TOKEN, GUEST_TOKEN, VIEWER_TOKEN, wait_until
from tests.unit.test_sinks_readonly import CORPUS

pytestmark = pytest.mark.kafka


def _produce(bootstrap: str, topic: str, events: list[MetricSample]) -> None:
    async def send() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
        await producer.start()
        try:
            for e in events:
                await producer.send_and_wait(topic, Codec().encode(e), key=e.resource_id.encode())
        finally:
            await producer.stop()

    asyncio.run(send())


def test_the_attack_corpus_is_refused_for_every_caller(worker_factory) -> None:
    worker = worker_factory("ingest")
    assert worker.sql_response("SELECT 1").status_code == 200  # policies loaded
    for what, sql in CORPUS:
        anonymous = worker.sql_response(sql, token=None)
        assert anonymous.status_code == 401, what
        assert anonymous.headers.get("WWW-Authenticate") == "Bearer"
        for token in (VIEWER_TOKEN, ADMIN_TOKEN):
            resp = worker.sql_response(sql, token=token)
            assert resp.status_code == 400, f"{what}: {resp.status_code} {resp.text[:200]}"
            assert "read-only SQL rejected" in resp.json()["error"], what
    # POSTing the statement as the body is checked the same way
    resp = httpx.post(f"{worker.url}/sql", content=b"SELECT * FROM \"file\"('/etc/passwd')",
                      headers={"Authorization": f"Bearer {VIEWER_TOKEN}"}, timeout=30)
    assert resp.status_code == 400 and "file() is not allowed" in resp.json()["error"]


def test_a_viewer_reads_the_history_and_others_are_turned_away(worker_factory, kafka_cfg):
    worker = worker_factory("ingest")
    samples = [MetricSample(resource_id=f"vm-{i}", cpu_usage=10.0 + i) for i in range(5)]
    _produce(kafka_cfg.bootstrap, kafka_cfg.topic("metrics"), samples)
    wait_until(lambda: worker.scalar("SELECT count() FROM metric_samples") == 5,
               what="samples stored")
    assert worker.sql("SELECT count() AS n FROM metric_samples") == [{"n": 5}]
    assert worker.sql_response("SELECT 1", token="not-a-token").status_code == 401
    guest = worker.sql_response("SELECT count() FROM metric_samples", token=GUEST_TOKEN)
    assert guest.status_code == 403 and "guest" in guest.text
    csv = worker.sql_response("SELECT count() FROM metric_samples", fmt="CSV")
    assert csv.status_code == 200 and csv.text.strip() == "5"
    for fmt in ("Native", "JSON SETTINGS readonly=0", "TabSeparated\nX", "Parquet"):
        bad = worker.sql_response("SELECT 1", fmt=fmt)
        assert bad.status_code == 400 and "unknown format" in bad.json()["error"], fmt


def test_a_slow_query_does_not_hold_up_the_inserts(worker_factory, kafka_cfg) -> None:
    # the engine cancels a query after max_execution_seconds; 10 s leaves no doubt about order
    # (the sample lands ~1 s after it is sent while the query runs)
    worker = worker_factory("ingest", NOVACRON_SQL_LIMITS__MAX_EXECUTION_SECONDS="10")
    assert worker.sql_response("SELECT 1").status_code == 200
    slow: dict[str, httpx.Response] = {}
    started = threading.Event()

    def run_slow() -> None:
        started.set()
        slow["resp"] = worker.sql_response(
            "SELECT count() FROM numbers(100000000000) WHERE cityHash64(number) = 0"
        )

    thread = threading.Thread(target=run_slow, daemon=True)
    thread.start()
    started.wait()
    wait_until(lambda: _running_queries(worker) >= 1, what="the slow query running")
    resource = f"vm-{uuid.uuid4().hex[:8]}"
    _produce(kafka_cfg.bootstrap, kafka_cfg.topic("metrics"),
             [MetricSample(resource_id=resource, cpu_usage=50.0)])
    query = f"SELECT count() FROM metric_samples WHERE resource_id = '{resource}'"
    wait_until(lambda: worker.scalar(query) == 1, timeout=25, what="the sample stored")
    assert thread.is_alive(), "the slow query ended before the sample landed: nothing was shown"
    thread.join(90)
    assert slow["resp"].status_code == 400 and "TIMEOUT_EXCEEDED" in slow["resp"].text


def _running_queries(worker) -> int:  # type: ignore[no-untyped-def]
    # the read pool has one slow query in flight when the sql-read gauge of /metrics says so
    text = httpx.get(f"{worker.url}/metrics", timeout=10).text
    for line in text.splitlines():
        if line.startswith("novacron_sql_queries_running "):
            return int(float(line.split()[1]))
    return 0
