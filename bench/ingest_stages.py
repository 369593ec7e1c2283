"""Where the ingest worker's time goes: the stages of one poll batch of metric records, the
record-by-record path (decode, to_row dicts, JSONEachRow insert) against the batch path
(decode_batch, column-wise add_batch, ArrowStream insert), in one process.

    python bench/ingest_stages.py [--records 10000] [--repeat 7]

Python stages are timed in CPU time of the calling thread (`time.thread_time`), which other
processes on the shared cores do not inflate; the inserts in wall time and in process CPU time
(chDB's own threads included). Each path runs with Python's default collector thresholds and
with the ingest worker's (`streams.gc_tuning.tune_gc`). Writes bench/results/ingest_stages.json.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from agents.ingest import Ingestor, RawRecord
from schemas import MetricSample
from schemas.codec import Codec
from sinks.backend import ChdbBackend
from sinks.config import ClickHouseConfig
from sinks.ddl import apply_ddl
from sinks.writer import BatchingSink
from streams.gc_tuning import GC_THRESHOLDS

RESULTS = Path(__file__).with_name("results") / "ingest_stages.json"


def records(n: int) -> list[RawRecord]:
    """The records `ingest_pipeline` produces (JSON metric samples)."""
    codec = Codec()
    samples = (MetricSample(resource_id=f"vm-{i % 500}", cpu_usage=float(i % 100),
                            memory_usage=50.0, request_rate=float(i % 1000)) for i in range(n))
    return [RawRecord("metrics", 0, i, b"k", codec.encode(s)) for i, s in enumerate(samples)]


def timed(fn: Callable[[], Any], clock: Callable[[], float]) -> tuple[Any, float]:
    start = clock()
    out = fn()
    return out, clock() - start


def one_pass(path: str, recs: list[RawRecord], ingestor: Ingestor, sink: BatchingSink
             ) -> dict[str, float]:
    """Seconds per stage for one batch through one path."""
    if path == "per_record":
        events, decode = timed(
            lambda: [ingestor.decode(r, MetricSample) for r in recs], time.thread_time)

        def buffer() -> None:
            for r, e in zip(recs, events, strict=True):
                sink.add(e, r.topic, r.partition, r.offset)
    else:
        events, decode = timed(lambda: ingestor.decode_batch(recs, MetricSample), time.thread_time)

        def buffer() -> None:
            sink.add_batch(events, "metrics", 0, [r.offset for r in recs])
    _, rows = timed(buffer, time.thread_time)
    batch = sink.detach()
    wall, cpu = time.perf_counter(), time.process_time()
    sink.insert(batch)
    return {"decode": decode, "rows": rows, "insert_wall": time.perf_counter() - wall,
            "insert_process_cpu": time.process_time() - cpu}


def measure(n: int, repeat: int, backend: ChdbBackend, db: str) -> dict[str, Any]:
    recs = records(n)
    ingestor = Ingestor(Codec())
    out: dict[str, Any] = {}
    for gc_mode in ("default", "tuned"):
        if gc_mode == "tuned":
            gc.collect()
            gc.freeze()
            gc.set_threshold(*GC_THRESHOLDS)
        for path in ("per_record", "batch"):
            sink = BatchingSink(backend, db)
            if path == "per_record":  # the insert of the former path: JSONEachRow rows
                sink.backend = _RowsOnly(backend)
            passes = [one_pass(path, recs, ingestor, sink) for _ in range(repeat)]
            stages = {k: statistics.median(p[k] for p in passes) * 1e6 / n for k in passes[0]}
            main = stages["decode"] + stages["rows"]
            out[f"{path}/gc_{gc_mode}"] = {
                "us_per_record": {k: round(v, 2) for k, v in stages.items()},
                "python_thread_records_per_s": round(1e6 / main),
            }
    gc.unfreeze()
    gc.set_threshold(700, 10, 10)
    return out


class _RowsOnly:
    """The backend as the former sink used it: every table as JSONEachRow rows."""

    def __init__(self, inner: ChdbBackend) -> None:
        self.inner = inner

    def insert_rows(self, table: str, rows: Any) -> None:
        self.inner.insert_rows(table, rows)

    def insert_columns(self, table: str, block: Any) -> None:
        self.inner.insert_rows(table, block.rows())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="novacron-bench-") as tmp:
        cfg = ClickHouseConfig(path=Path(tmp) / "chdb", database="stages")
        backend = ChdbBackend(cfg.path)
        try:
            apply_ddl(backend, cfg)
            load = os.getloadavg()[0]
            stages = measure(args.records, args.repeat, backend, cfg.database)
        finally:
            backend.close()
    result = {"benchmark": "ingest_stages", "records_per_batch": args.records,
              "repeat": args.repeat, "stages": stages,
              "load_average_1m": {"start": load, "end": os.getloadavg()[0]},
              "cpu_count": os.cpu_count()}
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
