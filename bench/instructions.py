"""Instructions per unit of work (callgrind), this tree vs a baseline: a measure the load of a
shared machine does not move.

Each workload runs under `valgrind --tool=callgrind` on each tree at two sizes; the difference
of the instruction counts over the difference of the sizes is the cost of one unit (start-up,
imports and input building cancel out). Workloads: `model_set` (one sample through the
optimizer's default model set, as `bench/optimizer.py` measures it) and `decision` (one
simulator sample through observe + decide, as `bench/decision.py` measures it).

Run: python bench/instructions.py [--baseline-rev main] [--sizes 1000 3000]
     → bench/results/instructions.json
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from _tree import ROOT, export_tree, resolve

OUT = Path(__file__).parent / "results" / "instructions.json"
MODELS = ROOT / "models" / "dqn" / "pretrained"


def _model_set(n: int) -> None:
    from optimizer import _metrics, _rows

    from models.anomaly import AnomalyDetector
    from models.forecast import Forecaster
    from models.recommend import Recommender

    rows = _rows(3000)[:n]  # the same inputs at every size: only the work differs
    detector, recommender = AnomalyDetector(), Recommender()
    forecasters = {m: Forecaster() for m in ("cpu_usage", "memory_usage", "network_latency_ms",
                                             "cost_per_hour")}
    for row in rows:
        detector.score_learn(_metrics(row))
        for metric, model in forecasters.items():
            model.score_one(row[metric])
            model.learn_one(row[metric], row["t"])
            model.predict_one()
        recommender.learn_one(row)


def _decision(n: int) -> None:
    from decision import _samples, _weights

    from agents.decision import DecisionConfig, DecisionEngine
    from models.dqn.policy import QPolicy

    weights, version = _weights(MODELS)
    samples = _samples(3000)[:n]
    engine = DecisionEngine(DecisionConfig(), QPolicy(weights, version))
    for sample in samples:
        engine.observe(sample)
        engine.decide(sample.resource_id, sample.event_time)


WORKLOADS = {"model_set": _model_set, "decision": _decision}


def _count(tree: Path, workload: str, n: int) -> int:
    env = dict(os.environ, PYTHONPATH=f"{tree}:{tree / 'bench'}")
    cmd = ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable,
           str(Path(__file__).resolve()), "--workload", workload, "--n", str(n)]
    proc = subprocess.run(cmd, cwd=tree, env=env, capture_output=True, text=True, check=False)
    found = re.search(r"Collected : (\d+)", proc.stderr)
    if proc.returncode != 0 or found is None:
        raise RuntimeError(f"{workload} failed in {tree}:\n{proc.stderr[-2000:]}")
    return int(found.group(1))


def bench(rev: str, sizes: tuple[int, int]) -> dict[str, Any]:
    small, large = sizes
    out: dict[str, Any] = {"benchmark": "instructions", "baseline_rev": resolve(rev),
                           "sizes": list(sizes), "unit": "instructions per sample (callgrind)"}
    with tempfile.TemporaryDirectory(prefix="novacron-instructions-") as tmp:
        trees = {"baseline": export_tree(rev, Path(tmp)), "current": ROOT}
        for workload in WORKLOADS:
            per = {name: (_count(tree, workload, large) - _count(tree, workload, small))
                   // (large - small) for name, tree in trees.items()}
            per["change"] = round(per["current"] / per["baseline"] - 1.0, 4)
            out[workload] = per
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--baseline-rev", default="main")
    parser.add_argument("--sizes", type=int, nargs=2, default=(1000, 3000))
    parser.add_argument("--workload", choices=sorted(WORKLOADS), help=argparse.SUPPRESS)
    parser.add_argument("--n", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.workload:  # one size, under callgrind, in the tree on PYTHONPATH
        WORKLOADS[args.workload](args.n)
        return
    result = bench(args.baseline_rev, tuple(args.sizes))
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
