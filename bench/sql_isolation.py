"""Benchmark: does a slow /sql query hold up the history sink? Time from producing one metric
sample to seeing it in ClickHouse, on a real ingest worker (real broker, chDB), with no query
running (the baseline) and while allowed slow queries keep one read session busy, in one run.

    python bench/sql_isolation.py [--rounds 20]   (needs `novacron kafka start`)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import httpx
from aiokafka import AIOKafkaProducer

from agents.access import hash_token
from schemas import MetricSample
from schemas.codec import Codec
from streams import kafka_clients
from streams.settings import KafkaConfig
from streams.topics import create_topics

RESULTS = Path(__file__).with_name("results")
TOKEN = secrets.token_urlsafe(24)
SLOW = "SELECT count() FROM numbers(100000000000) WHERE cityHash64(number) = 0"
"""An allowed query that runs until the engine cancels it (max_execution_seconds)."""


def start_worker(cfg: KafkaConfig, workdir: Path, port: int) -> subprocess.Popen[bytes]:
    env = dict(
        os.environ,
        NOVACRON_KAFKA__BOOTSTRAP=cfg.bootstrap,
        NOVACRON_KAFKA__TOPIC_PREFIX=cfg.topic_prefix,
        NOVACRON_CLICKHOUSE__PATH=str(workdir / "chdb"),
        NOVACRON_DATA_DIR=str(workdir),
        NOVACRON_SINK__BATCH_SECONDS="0.2",
        NOVACRON_SQL_LIMITS__MAX_EXECUTION_SECONDS="10",
        NOVACRON_API__TOKENS=json.dumps({hash_token(TOKEN): {"user": "bench", "role": "viewer"}}),
    )
    cmd = [sys.executable, "-m", "streams.cli.main", "worker", "--role", "ingest",
           "--web-port", str(port), "--loglevel", "warning"]
    log = open(workdir / "ingest.log", "wb")  # noqa: SIM115 - the child owns it
    return subprocess.Popen(cmd, env=env, cwd=workdir, stdout=log, stderr=subprocess.STDOUT)


def sql(url: str, query: str, timeout: float = 60) -> httpx.Response:
    return httpx.get(f"{url}/sql", params={"query": query}, timeout=timeout,
                     headers={"Authorization": f"Bearer {TOKEN}"})


def wait_ready(url: str) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if sql(url, "SELECT 1", 5).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise TimeoutError("the ingest worker did not serve /sql")


async def land_once(cfg: KafkaConfig, producer: AIOKafkaProducer, url: str) -> float:
    """Seconds from sending one sample to seeing it through /sql (polled every 20 ms)."""
    rid = f"bench-{uuid.uuid4().hex[:10]}"
    query = f"SELECT count() AS n FROM metric_samples WHERE resource_id = '{rid}'"
    sample = MetricSample(resource_id=rid, cpu_usage=1.0)
    start = time.perf_counter()
    await producer.send_and_wait(cfg.topic("metrics"), Codec().encode(sample), key=rid.encode())
    while True:
        resp = await asyncio.to_thread(sql, url, query)
        if resp.status_code == 200 and json.loads(resp.text)["n"] == 1:
            return time.perf_counter() - start
        await asyncio.sleep(0.02)


async def measure(cfg: KafkaConfig, url: str, rounds: int) -> list[float]:
    producer = kafka_clients.producer(cfg, linger_ms=0)
    await producer.start()
    try:
        return [await land_once(cfg, producer, url) for _ in range(rounds)]
    finally:
        await producer.stop()


def summary(latencies: list[float]) -> dict[str, float]:
    ordered = sorted(latencies)
    return {
        "p50_s": round(statistics.median(ordered), 3),
        "p95_s": round(ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))], 3),
        "max_s": round(ordered[-1], 3),
    }


def keep_slow_query_running(url: str, stop: threading.Event, outcomes: list[int]) -> None:
    while not stop.is_set():
        outcomes.append(sql(url, SLOW).status_code)  # 400 TIMEOUT_EXCEEDED after 10 s


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    cfg = KafkaConfig(topic_prefix=f"bench{uuid.uuid4().hex[:8]}.", partitions=1)
    asyncio.run(create_topics(cfg))
    workdir = Path(tempfile.mkdtemp(prefix="novacron-sql-bench-"))
    port = free_port()
    proc, url = start_worker(cfg, workdir, port), f"http://127.0.0.1:{port}"
    try:
        wait_ready(url)
        asyncio.run(measure(cfg, url, 3))  # warm-up: first batch, first reads
        baseline = asyncio.run(measure(cfg, url, args.rounds))
        stop, outcomes = threading.Event(), []
        slow = threading.Thread(target=keep_slow_query_running, args=(url, stop, outcomes))
        slow.start()
        time.sleep(1.0)
        loaded = asyncio.run(measure(cfg, url, args.rounds))
        stop.set()
        slow.join(30)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
        shutil.rmtree(workdir, ignore_errors=True)
        asyncio.run(delete_topics(cfg))
    result = {
        "rounds": args.rounds,
        "baseline_no_query": summary(baseline),
        "with_slow_query": summary(loaded),
        "slow_query_outcomes": outcomes,
        "note": "produce one MetricSample → visible through /sql; sink batch_seconds 0.2; the "
                "slow query runs on its own read session (max_threads 1) until cancelled at 10 s",
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "sql_isolation.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def delete_topics(cfg: KafkaConfig) -> None:
    admin = kafka_clients.admin(cfg)
    await admin.start()
    try:
        prefixes = (cfg.topic_prefix, cfg.topic_prefix.rstrip(".") + "-")
        mine = [t for t in await admin.list_topics() if t.startswith(prefixes)]
        if mine:
            await admin.delete_topics(mine)
    finally:
        await admin.close()


if __name__ == "__main__":
    main()
