"""The decision agent's per-service snapshot: time and size, this tree against a baseline tree.

A decided service is checkpointed before its sample's offset is committed (`on_output`), so a
burst of decisions is a burst of snapshots on the learn role's batch path. Each tree runs in a
fresh interpreter on the same samples (`bench/decision.py`'s world, 4 services): every service
is observed and decided on for `--samples` samples, then each service's snapshot is taken
`--repeat` times (timed) and restored into a fresh engine, which must then decide as the
original does on the next samples (checked here on both trees).

Run: python bench/decision_snapshot.py [--baseline-rev 7e03df2] [--rounds 3]
Writes bench/results/decision_snapshot.json.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from _tree import ROOT, export_tree, resolve, run_workload
from decision import _samples  # the same world and samples as the decision-latency bench

from agents.decision import DecisionConfig, DecisionEngine
from models.dqn.checkpoints import CheckpointStore
from models.dqn.policy import QPolicy, init_weights
from schemas import MetricSample

MODEL_DIR = ROOT / "models" / "dqn" / "pretrained"


def _engine() -> DecisionEngine:
    store = CheckpointStore(MODEL_DIR)
    version = store.current()
    weights = store.load() if version else init_weights(0)
    return DecisionEngine(DecisionConfig(), QPolicy(weights, str(version or "untrained")))


def _decide(engine: DecisionEngine, samples: list[MetricSample]) -> list[str]:
    out = []
    for s in samples:
        engine.observe(s)
        d = engine.decide(s.resource_id, s.event_time)
        out.append("-" if d is None else f"{d.decision_type} {d.reasoning}")
    return out


def workload(samples: int, repeat: int) -> dict[str, Any]:
    """One tree: snapshot ns per call and bytes per service, and whether restoring keeps the
    decisions."""
    data = _samples(samples + 400)
    engine = _engine()
    _decide(engine, data[:samples])
    keys = sorted(engine.states.windows)
    ns: list[int] = []
    sizes = []
    for key in keys:
        blob = engine.snapshot(key)
        assert blob is not None
        sizes.append(len(blob))
        for _ in range(repeat):
            t0 = time.perf_counter_ns()
            engine.snapshot(key)
            ns.append(time.perf_counter_ns() - t0)
    restored = _engine()
    for key in keys:
        blob = engine.snapshot(key)
        assert blob is not None
        restored.restore(key, blob)
    same = _decide(engine, data[samples:]) == _decide(restored, data[samples:])
    return {"ns": ns, "bytes": sizes, "same_decisions_after_restore": same}


def _stats(ns: list[int]) -> dict[str, float]:
    us = np.asarray(ns, dtype=np.float64) / 1000
    return {"p50_us": round(float(np.percentile(us, 50)), 1),
            "p99_us": round(float(np.percentile(us, 99)), 1), "n": int(us.size)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--baseline-rev", default="7e03df2")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds per tree")
    parser.add_argument("--samples", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=500)
    parser.add_argument("--out", type=Path, default=ROOT / "bench/results/decision_snapshot.json")
    parser.add_argument("--workload", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.workload:
        print(json.dumps(workload(args.samples, args.repeat)))
        return
    runs: dict[str, dict[str, Any]] = {n: {"ns": [], "bytes": [], "same": []}
                                       for n in ("baseline", "current")}
    load = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="novacron-snapshot-bench-") as tmp:
        trees = {"baseline": export_tree(args.baseline_rev, Path(tmp)), "current": ROOT}
        for _ in range(args.rounds):
            for name, tree in trees.items():
                out = run_workload(__file__, tree, "--samples", str(args.samples),
                                   "--repeat", str(args.repeat))
                runs[name]["ns"] += out["ns"]
                runs[name]["bytes"] = out["bytes"]
                runs[name]["same"].append(out["same_decisions_after_restore"])
    result = {"bench": "decision_snapshot", "baseline_rev": resolve(args.baseline_rev),
              "rounds": args.rounds, "samples": args.samples,
              "loadavg_before_after": [load, os.getloadavg()],
              **{name: {"snapshot": _stats(r["ns"]), "bytes_per_service": r["bytes"],
                        "same_decisions_after_restore": all(r["same"])}
                 for name, r in runs.items()}}
    args.out.write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
