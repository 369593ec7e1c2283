"""Rows/s of BatchingSink (column-wise, ArrowStream) into chDB against a raw chDB JSONEachRow
insert of the same rows.

Run: python bench/sink_insert.py [--rows 100000] [--batch 10000] [--repeat 3]
Writes bench/results/sink_insert.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import chdb

from schemas import MetricSample
from sinks.backend import ChdbBackend, encode_json_rows
from sinks.config import ClickHouseConfig, SinkConfig
from sinks.ddl import apply_ddl
from sinks.rows import to_row
from sinks.writer import BatchingSink

RESULTS = Path(__file__).with_name("results") / "sink_insert.json"


def make_samples(n: int, seed: int = 7) -> list[MetricSample]:
    import random

    rng = random.Random(seed)
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    return [
        MetricSample(
            event_time=t0 + timedelta(milliseconds=i * 10), source="bench",
            resource_id=f"vm-{i % 200}", cluster=f"c{i % 4}", cpu_usage=rng.uniform(0, 100),
            memory_usage=rng.uniform(0, 100), network_latency_ms=rng.uniform(1, 300),
            request_rate=rng.uniform(0, 1000), error_rate=rng.uniform(0, 0.05),
            labels={"region": "eu", "tier": "web"},
        )
        for i in range(n)
    ]


def run_sink(backend: ChdbBackend, db: str, events: list[MetricSample], batch: int) -> float:
    """Seconds for add_batch() + flush() of every event, one poll batch at a time (columns built
    inside, as the ingest worker does)."""
    sink = BatchingSink(backend, db, SinkConfig(batch_size=batch))
    start = time.perf_counter()
    for i in range(0, len(events), batch):
        sink.add_batch(events[i : i + batch], "metrics", 0, list(range(i, i + batch)))
        if sink.due():
            sink.flush()
    sink.flush()
    return time.perf_counter() - start


def run_raw(backend: ChdbBackend, db: str, rows: list[dict], batch: int) -> float:
    """Seconds for raw chDB JSONEachRow inserts of pre-built rows (no sink, no conversion)."""
    session = backend._session  # the baseline talks to chDB directly
    start = time.perf_counter()
    for i in range(0, len(rows), batch):
        body = encode_json_rows(rows[i : i + batch])
        with session.send_insert(f"INSERT INTO `{db}`.metric_samples", "JSONEachRow") as ins:
            ins.append(body)
            ins.finish()
    return time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--batch", type=int, default=10_000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    events = make_samples(args.rows)
    with tempfile.TemporaryDirectory() as tmp:
        backend = ChdbBackend(Path(tmp))
        sink_s, raw_s, conv_s = [], [], []
        for r in range(args.repeat):
            t = time.perf_counter()
            rows = [to_row(e) for e in events]
            conv_s.append(time.perf_counter() - t)
            for name in (f"raw{r}", f"sink{r}"):
                apply_ddl(backend, ClickHouseConfig(path=Path(tmp), database=name))
            raw_s.append(run_raw(backend, f"raw{r}", rows, args.batch))
            sink_s.append(run_sink(backend, f"sink{r}", events, args.batch))
            got = backend.query(f"SELECT count() AS n FROM sink{r}.metric_samples")[0]["n"]
            assert got == args.rows, got
        backend.close()
    result = summarise(args, sink_s, raw_s, conv_s)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


def summarise(args: argparse.Namespace, sink_s: list[float], raw_s: list[float],
              conv_s: list[float]) -> dict:
    sink, raw, conv = (statistics.median(x) for x in (sink_s, raw_s, conv_s))
    return {
        "benchmark": "sink_insert",
        "rows": args.rows, "batch_size": args.batch, "repeat": args.repeat,
        "sink_rows_per_s": round(args.rows / sink), "sink_seconds": [round(s, 4) for s in sink_s],
        "baseline_raw_jsoneachrow_rows_per_s": round(args.rows / raw),
        "baseline_seconds": [round(s, 4) for s in raw_s],
        "sink_vs_baseline": round(raw / sink, 3),
        "to_row_rows_per_s": round(args.rows / conv),
        "note": "sink = add_batch (event columns) + one ArrowStream INSERT per batch; baseline = "
                "JSONEachRow INSERTs of pre-built to_row rows. Medians.",
        "chdb": chdb.__version__, "python": platform.python_version(),
        "machine": f"{platform.machine()} {platform.system()}",
    }


if __name__ == "__main__":
    main()
