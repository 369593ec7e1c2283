"""Benchmark: metric events through ingest → ClickHouse (chDB) on the real broker, vs the raw
aiokafka consume rate of the same topic measured in the same run.

    python bench/ingest_pipeline.py [--events 200000]   (needs `novacron kafka start`)
    python bench/ingest_pipeline.py --compare-rev REV [--rounds 2]

`--compare-rev` runs the ingest worker of another revision (exported with `git archive`) and of
this tree alternately on fresh topics with the same events, and reports both: before and after a
change, measured in one run (`--compare-rev edge` = the commit before the edge rules). Each round
also measures the raw aiokafka consume rate of its topic.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx

from agents.access import hash_token
from schemas import MetricSample
from schemas.codec import Codec
from streams import kafka_clients
from streams.settings import KafkaConfig
from streams.topics import create_topics

RESULTS = Path(__file__).with_name("results")
ROOT = Path(__file__).resolve().parent.parent
TOKEN = secrets.token_urlsafe(24)
"""A viewer token the benchmark's worker accepts on /sql."""


async def produce(cfg: KafkaConfig, n: int) -> float:
    codec = Codec()
    producer = kafka_clients.producer(
        cfg, linger_ms=20, max_batch_size=1 << 20, acks=1
    )
    await producer.start()
    started = time.perf_counter()
    try:
        futures = []
        for i in range(n):
            sample = MetricSample(
                resource_id=f"vm-{i % 500}",
                cpu_usage=float(i % 100),
                memory_usage=50.0,
                request_rate=float(i % 1000),
            )
            futures.append(
                await producer.send(
                    cfg.topic("metrics"), codec.encode(sample), key=sample.resource_id.encode()
                )
            )
        await asyncio.gather(*futures)
    finally:
        await producer.stop()
    return time.perf_counter() - started


async def raw_consume(cfg: KafkaConfig, n: int) -> float:
    """Baseline: the plain aiokafka getmany rate of the same topic (no decode, no insert)."""
    consumer = kafka_clients.consumer(
        cfg,
        cfg.topic("metrics"),
        group_id=f"bench-raw-{uuid.uuid4().hex[:6]}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        max_partition_fetch_bytes=4 << 20,
    )
    await consumer.start()
    seen, started = 0, None
    try:
        while seen < n:
            batch = await consumer.getmany(timeout_ms=500, max_records=10_000)
            if batch and started is None:
                started = time.perf_counter()
            seen += sum(len(v) for v in batch.values())
    finally:
        await consumer.stop()
    return time.perf_counter() - (started or time.perf_counter())


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def count(url: str) -> int:
    query = {"query": "SELECT count() AS n FROM novacron.metric_samples"}
    headers = {"Authorization": f"Bearer {TOKEN}"}
    resp = httpx.get(f"{url}/sql", params=query, headers=headers, timeout=60)
    if resp.status_code == 503:  # access policies still loading
        return 0
    resp.raise_for_status()
    return int(json.loads(resp.text)["n"])


def histogram_quantiles(url: str) -> dict[str, float]:
    """p50/p99 batch insert latency from the worker's Prometheus histogram (bucket upper bounds)."""
    text = httpx.get(f"{url}/metrics").text
    buckets = [
        (float(le), float(v))
        for le, v in re.findall(r'novacron_sink_insert_seconds_bucket\{le="([^"+]+)"\} (\S+)', text)
    ]
    total = buckets[-1][1] if buckets else 0
    out = {}
    for q in (0.5, 0.99):
        out[f"p{int(q * 100)}_batch_seconds"] = next(
            (le for le, c in buckets if c >= q * total), float("nan")
        )
    out["batches"] = total
    return out


def thread_cpu(pid: int) -> dict[str, float]:
    """CPU seconds the worker's threads used so far, summed by thread name (Linux /proc): the
    event loop's thread against the others (the insert thread carries the process's name,
    ClickHouse's own threads theirs)."""
    out: dict[str, float] = {}
    tick = os.sysconf("SC_CLK_TCK")
    for stat in Path(f"/proc/{pid}/task").glob("*/stat"):
        try:
            text = stat.read_text()
        except OSError:  # the thread ended meanwhile
            continue
        name = text[text.index("(") + 1 : text.rindex(")")]
        fields = text[text.rindex(")") + 2 :].split()
        name = re.sub(r"[0-9]+$", "", name) or name
        if stat.parent.name == str(pid):
            name = "main (event loop)"
        out[name] = out.get(name, 0.0) + (int(fields[11]) + int(fields[12])) / tick
    return {k: round(v, 2) for k, v in sorted(out.items(), key=lambda kv: -kv[1]) if v >= 0.05}


def run_pipeline(
    cfg: KafkaConfig, n: int, workdir: Path, tree: Path | None = None, profile: Path | None = None
) -> dict[str, float]:
    port = free_port()
    env = dict(
        os.environ,
        # this checkout's code (or `tree`'s), not whatever the environment has installed
        PYTHONPATH=str(tree or ROOT),
        NOVACRON_KAFKA__BOOTSTRAP=cfg.bootstrap,
        NOVACRON_KAFKA__TOPIC_PREFIX=cfg.topic_prefix,
        NOVACRON_CLICKHOUSE__PATH=str(workdir / "chdb"),
        NOVACRON_DATA_DIR=str(workdir),
        NOVACRON_API__TOKENS=json.dumps({hash_token(TOKEN): {"user": "bench", "role": "viewer"}}),
    )
    log = open(workdir / "ingest.log", "wb")
    profiler = ["-m", "cProfile", "-o", str(profile)] if profile else []
    proc = subprocess.Popen(
        [
            sys.executable,
            *profiler,
            "-m",
            "streams.cli.main",
            "worker",
            "--role",
            "ingest",
            "--web-port",
            str(port),
            "--loglevel",
            "warning",
        ],
        env=env,
        cwd=tree or workdir,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        while True:
            try:
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        started, first, seen = time.perf_counter(), None, 0
        cpu_at_first: dict[str, float] = {}
        while seen < n:
            seen = count(url)
            if seen and first is None:
                first = (time.perf_counter(), seen)
                cpu_at_first = thread_cpu(proc.pid)
            time.sleep(0.1)
        ended = time.perf_counter()
        quantiles = histogram_quantiles(url)
        threads = thread_cpu(proc.pid)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
    assert first is not None
    steady_cpu = {k: round(v - cpu_at_first.get(k, 0.0), 2) for k, v in threads.items()}
    main_cpu = steady_cpu.get("main (event loop)", 0.0)
    return {
        "seconds_from_healthy": ended - started,
        "events_per_s_from_healthy": n / (ended - started),
        "events_per_s_steady": (n - first[1]) / (ended - first[0]),
        **quantiles,
        "worker_cpu_seconds_by_thread": threads,
        # from the first stored row to the last: start-up (imports, DDL, policies) left out
        "worker_cpu_seconds_steady_by_thread": steady_cpu,
        "events_per_main_thread_cpu_second": round((n - first[1]) / main_cpu) if main_cpu else 0,
    }


async def main_async(n: int, profile: Path | None = None) -> dict[str, object]:
    cfg = KafkaConfig(topic_prefix=f"bench{uuid.uuid4().hex[:6]}.", partitions=4)
    await create_topics(cfg)
    produce_s = await produce(cfg, n)
    raw_s = await raw_consume(cfg, n)
    workdir = Path(tempfile.mkdtemp(prefix="novacron-bench-"))
    try:
        pipeline = await asyncio.to_thread(run_pipeline, cfg, n, workdir, None, profile)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    raw_rate = n / raw_s
    return {
        "benchmark": "ingest_pipeline",
        "events": n,
        "partitions": cfg.partitions,
        "produce_events_per_s": n / produce_s,
        "baseline_raw_aiokafka_consume_events_per_s": raw_rate,
        "pipeline": pipeline,
        "ratio_pipeline_to_raw_consume": pipeline["events_per_s_steady"] / raw_rate,
        "load_average_1m": os.getloadavg()[0],
        "cpu_count": os.cpu_count(),
    }


async def one_pipeline(n: int, tree: Path) -> dict[str, float]:
    """Fresh topics, n produced events, the raw consume rate of the topic, then one ingest worker
    running the code of `tree`."""
    cfg = KafkaConfig(topic_prefix=f"bench{uuid.uuid4().hex[:6]}.", partitions=4)
    await create_topics(cfg)
    await produce(cfg, n)
    raw_rate = n / await raw_consume(cfg, n)
    workdir = Path(tempfile.mkdtemp(prefix="novacron-bench-"))
    try:
        result = await asyncio.to_thread(run_pipeline, cfg, n, workdir, tree)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return {**result, "raw_aiokafka_consume_events_per_s": raw_rate,
            "ratio_to_raw_consume": result["events_per_s_steady"] / raw_rate}


async def compare_async(n: int, rev: str, rounds: int) -> dict[str, object]:
    """The ingest pipeline of `rev` and of this tree, alternately, `rounds` times each."""
    from _tree import ROOT, before_edge_rules, export_tree, resolve

    rev = before_edge_rules() if rev == "edge" else rev
    runs: dict[str, list[dict[str, float]]] = {"baseline": [], "current": []}
    load = [os.getloadavg()[0]]
    with tempfile.TemporaryDirectory(prefix="novacron-bench-tree-") as tmp:
        trees = {"baseline": export_tree(rev, Path(tmp)), "current": ROOT}
        for _ in range(rounds):
            for name, tree in trees.items():
                runs[name].append(await one_pipeline(n, tree))
                load.append(os.getloadavg()[0])
    steady = {k: statistics.median(r["events_per_s_steady"] for r in v) for k, v in runs.items()}
    raw = statistics.median(r["raw_aiokafka_consume_events_per_s"] for v in runs.values()
                            for r in v)
    return {
        "benchmark": "ingest_pipeline_compare",
        "events": n,
        "baseline_rev": resolve(rev),
        "current_rev": resolve("HEAD"),
        "rounds": rounds,
        "steady_events_per_s_median": steady,
        "ratio_current_to_baseline": steady["current"] / steady["baseline"],
        "raw_aiokafka_consume_events_per_s_median": raw,
        "ratio_current_to_raw_consume": steady["current"] / raw,
        "load_average_1m": {"min": min(load), "max": max(load)},
        "runs": runs,
        "cpu_count": os.cpu_count(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--compare-rev", default=None,
                        help="also run this git revision's ingest worker ('edge': before the "
                        "edge rules) and compare")
    parser.add_argument("--rounds", type=int, default=2, help="alternating rounds per tree")
    parser.add_argument("--profile", type=Path, default=None,
                        help="run the ingest worker under cProfile, stats to this file (the "
                        "rates are then the profiled ones)")
    args = parser.parse_args()
    if args.compare_rev:
        result = asyncio.run(compare_async(args.events, args.compare_rev, args.rounds))
        name = "ingest_pipeline_compare.json"
    else:
        result = asyncio.run(main_async(args.events, args.profile))
        name = "ingest_pipeline_profiled.json" if args.profile else "ingest_pipeline.json"
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / name).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
