"""The cyclic collector on the learn role's hot path: Python's default thresholds vs `tune_gc`.

The learn role's whole wiring (as `learn_role_profile` builds it: every agent of
`rows_of("learn")`, the end-to-end bench's samples, 100 services, every fifth overloaded, the
bench's 3 s DQN cooldown) handles `--records` samples in batches of 7 through
`HostCore.process`, one thread, no Kafka. Each mode runs in a fresh interpreter, in interleaved
rounds: `default` (700, 10, 10) and `tuned` (`streams.gc_tuning.tune_gc` once the role is built,
as the worker calls it once started). Reported per mode: every collection's pause by generation
(count, total, max), the batch wall-time percentiles, and the time of one full collection at
the end (what a generation-2 pause costs with that heap).

Run: python bench/host_gc.py [--records 60000] [--rounds 2]
Writes bench/results/host_gc.json.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
from _tree import ROOT, resolve, run_workload, write_result
from learn_role_profile import BENCH_ENV, _NoSends, _records

from agents.ingest import RawRecord
from schemas.codec import Codec
from streams.gc_tuning import tune_gc
from streams.host_metrics import HostMetrics
from streams.runner import RoleRunner
from streams.settings import Settings
from streams.state import MemoryStateStore
from streams.wiring import rows_of

OUT = Path(__file__).parent / "results" / "host_gc.json"
BATCH = 7
"""Records per `process` call: the learn role's median batch at 1,000 samples/s."""


def _batches(settings: Settings, codec: Codec, n: int) -> Iterator[list[RawRecord]]:
    """The samples, made 700 at a time (so they die as in a worker, not held by the bench)."""
    for _ in range(0, n, 700):
        chunk = _records(settings, codec, 700)
        for j in range(0, len(chunk), BATCH):
            yield chunk[j:j + BATCH]


def workload(mode: str, n: int) -> dict[str, Any]:
    """One mode in this interpreter: collection pauses and batch times."""
    os.environ.update(BENCH_ENV)
    settings, codec = Settings(), Codec()
    runner = RoleRunner(settings, "learn", rows_of("learn"), emitter=_NoSends(),  # type: ignore[arg-type]
                        codec=codec, store=MemoryStateStore(), metrics=HostMetrics(registry=None))
    core = runner.core
    core.loaded |= set(range(settings.kafka.partitions))
    if mode == "tuned":
        tune_gc()
    pauses: dict[int, list[float]] = defaultdict(list)
    started: list[int] = []

    def timed(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            started.append(time.perf_counter_ns())
        else:
            pauses[info["generation"]].append((time.perf_counter_ns() - started.pop()) / 1e6)

    gc.callbacks.append(timed)
    batch_ms = []
    for batch in _batches(settings, codec, n):
        t0 = time.perf_counter_ns()
        core.process(batch)
        batch_ms.append((time.perf_counter_ns() - t0) / 1e6)
    gc.callbacks.remove(timed)
    t0 = time.perf_counter_ns()
    gc.collect()
    return {"pauses": {str(g): p for g, p in pauses.items()}, "batch_ms": batch_ms,
            "full_collection_ms": (time.perf_counter_ns() - t0) / 1e6,
            "tracked_objects": len(gc.get_objects()), "frozen": gc.get_freeze_count()}


def _summary(runs: list[dict[str, Any]]) -> dict[str, Any]:
    batch = np.concatenate([np.asarray(r["batch_ms"]) for r in runs])
    gens: dict[str, list[float]] = defaultdict(list)
    for r in runs:
        for g, p in r["pauses"].items():
            gens[g] += p
    return {
        "collections": {g: {"count": len(p), "total_ms": round(sum(p), 1),
                            "max_ms": round(max(p), 2)} for g, p in sorted(gens.items())},
        "batch_ms": {"p50": round(float(np.percentile(batch, 50)), 3),
                     "p99": round(float(np.percentile(batch, 99)), 3),
                     "p999": round(float(np.percentile(batch, 99.9)), 3),
                     "max": round(float(batch.max()), 2), "n": int(batch.size)},
        "full_collection_ms": [round(r["full_collection_ms"], 1) for r in runs],
        "tracked_objects": [r["tracked_objects"] for r in runs],
        "frozen": [r["frozen"] for r in runs]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=60_000)
    parser.add_argument("--rounds", type=int, default=2, help="interleaved rounds per mode")
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--workload", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--mode", choices=("default", "tuned"), default="default",
                        help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.workload:  # one mode, in a fresh interpreter
        print(json.dumps(workload(args.mode, args.records)))
        return
    load = os.getloadavg()
    runs: dict[str, list[dict[str, Any]]] = {"default": [], "tuned": []}
    for _ in range(args.rounds):
        for mode in runs:
            runs[mode].append(run_workload(__file__, ROOT, "--mode", mode,
                                           "--records", str(args.records)))
    result = {"bench": "host_gc", "tree": resolve("HEAD"), "records": args.records,
              "batch": BATCH, "rounds": args.rounds,
              **{mode: _summary(r) for mode, r in runs.items()},
              "loadavg_before_after": [load, os.getloadavg()]}
    write_result(args.out, result)


if __name__ == "__main__":
    main()
