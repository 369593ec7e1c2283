"""The decision host's tick (its per-service gauges) as a worker holds more services.

Every second the learn role's host ticks the decision companion on the event loop, under the
host's lock. Here an engine holds `--services` services, each observed once; then each timed
tick follows 7 new samples (a second's news for a few services), as a worker between ticks.
Each tree runs in a fresh interpreter, interleaved; reported: the median tick in ms.

Run: python bench/decision_gauges.py [--services 100,10000] [--ticks 50] [--rounds 3]
     [--baseline-rev REV]
Writes bench/results/decision_gauges.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from _tree import comparison_args, interleaved, median_by_size, resolve, write_result

from agents.decision import DecisionEngine
from agents.shared import SharedState
from models.dqn.checkpoints import CheckpointStore
from schemas import MetricSample
from streams.decision import DecisionCompanion

OUT = Path(__file__).parent / "results" / "decision_gauges.json"


def workload(services: int, ticks: int) -> float:
    """Median ms of a tick with `services` services held, 7 of them with news."""
    engine = DecisionEngine()
    with tempfile.TemporaryDirectory() as tmp:
        companion = DecisionCompanion(engine, CheckpointStore(Path(tmp)), SharedState())
        samples = [MetricSample(resource_id=f"svc-{i}", resource_type="service",
                                cpu_usage=70.0, network_latency_ms=50.0, request_rate=100.0,
                                active_vms=3) for i in range(services)]
        for sample in samples:
            engine.observe(sample)
            engine.rewards[sample.resource_id] = 0.5
        companion.tick()
        spent = []
        for t in range(ticks):
            for sample in samples[(7 * t) % services:][:7]:
                engine.observe(sample)
            t0 = time.perf_counter_ns()
            companion.tick()
            spent.append((time.perf_counter_ns() - t0) / 1e6)
    return statistics.median(spent)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--services", default="100,10000")
    parser.add_argument("--ticks", type=int, default=50)
    comparison_args(parser, OUT)
    args = parser.parse_args()
    counts = [int(n) for n in args.services.split(",")]
    if args.workload:
        print(json.dumps({str(n): workload(n, args.ticks) for n in counts}))
        return
    load = os.getloadavg()
    runs = interleaved(__file__, args.baseline_rev, args.rounds, "--services", args.services,
                       "--ticks", str(args.ticks))
    result: dict[str, Any] = {
        "bench": "decision_gauges", "baseline_rev": resolve(args.baseline_rev),
        "ticks": args.ticks, "rounds": args.rounds,
        "tick_ms": median_by_size(runs, counts, 3),
        "loadavg_before_after": [load, os.getloadavg()]}
    write_result(args.out, result)


if __name__ == "__main__":
    main()
