"""Samples/s per core of the default optimizer model set, with river's HalfSpaceTrees as reference.

Run: python bench/optimizer.py [--samples N]  → bench/results/optimizer.json
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from river import anomaly

from agents.optimizer import Optimizer
from models.anomaly import AnomalyDetector
from models.forecast import Forecaster
from models.recommend import Recommender
from schemas import MetricSample

OUT = Path(__file__).parent / "results" / "optimizer.json"
START = datetime(2026, 1, 1, tzinfo=UTC)


def _rows(n: int) -> list[dict[str, Any]]:
    rng = random.Random(0)
    return [
        {"t": START + timedelta(minutes=5 * i), "cpu_usage": 40 + 20 * rng.random(),
         "memory_usage": 50 + 5 * rng.random(), "network_latency_ms": 20 + rng.random(),
         "cost_per_hour": 1.5, "active_vms": 4}
        for i in range(n)
    ]


def _rate(fn: Any, rows: list[Any]) -> float:
    start = time.perf_counter()
    for row in rows:
        fn(row)
    return len(rows) / (time.perf_counter() - start)


def _metrics(row: dict[str, Any]) -> dict[str, float]:
    return {k: v for k, v in row.items() if k not in ("t", "active_vms")}


def bench(n: int) -> dict[str, Any]:
    rows = _rows(n)
    hst = anomaly.HalfSpaceTrees(seed=42)
    # HST wants features in [0, 1]: the same scaling a user of it would apply
    scaled = [{k: v / 100 for k, v in _metrics(r).items()} for r in rows]

    def hst_step(x: dict[str, float]) -> None:
        hst.score_one(x)
        hst.learn_one(x)

    detector = AnomalyDetector()
    forecasters = {m: Forecaster() for m in ("cpu_usage", "memory_usage", "network_latency_ms",
                                             "cost_per_hour")}
    recommender = Recommender()

    def model_set(row: dict[str, Any]) -> None:
        x = _metrics(row)
        detector.score_learn(x)
        for metric, model in forecasters.items():
            model.score_one(row[metric])
            model.learn_one(row[metric], row["t"])
            model.predict_one()
        recommender.learn_one(row)

    optimizer = Optimizer()
    samples = [MetricSample(resource_id=f"vm-{i % 10}", event_time=r["t"], **_metrics(r),
                            active_vms=r["active_vms"]) for i, r in enumerate(rows)]

    fresh = AnomalyDetector()
    results = {
        "river_hst_reference": _rate(hst_step, scaled),
        "anomaly_detector": _rate(lambda r: fresh.score_learn(_metrics(r)), rows),
        "model_set": _rate(model_set, rows),
        "optimizer_process": _rate(optimizer.process, samples),  # incl. insight event building
    }
    reference = results["river_hst_reference"]
    return {
        "benchmark": "optimizer",
        "samples": n,
        "unit": "samples/s on one core",
        "python": platform.python_version(),
        "results": {k: round(v, 1) for k, v in results.items()},
        "relative_to_hst": {k: round(v / reference, 2) for k, v in results.items()},
        "note": "model_set = anomaly detector (4 metrics) + 4 forecasters (learn, score, predict "
                "every row) + recommender; optimizer_process = Optimizer.process over 10 resources "
                "(forecast insights every 12th sample, events built)",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--samples", type=int, default=20_000)
    args = parser.parse_args()
    result = bench(args.samples)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
