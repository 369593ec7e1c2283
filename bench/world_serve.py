"""The simulator's tick: `World.serve` on shared traces, this tree against a baseline revision.

Every autoscaling evaluation, training validation and the static-at-peak test spend their time
in `World.serve` (one tick of every service). Each tree runs in a fresh interpreter, rounds
interleaved; both must produce the same measurements bit for bit (a digest of every tick's).

Run: python bench/world_serve.py [--baseline-rev 25f75bd] [--rounds 3] [--ticks 20000]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import pickle
import statistics
import time
from pathlib import Path
from typing import Any

from _tree import ROOT, interleaved, resolve, write_result

from agents.simulator import SimConfig, World
from agents.simulator.evaluate import peak_vms
from models.dqn.reward import RewardConfig

TRACES = ("realAWSCloudwatch/ec2_cpu_utilization_24ae8d.csv", "realTweets/Twitter_volume_AAPL.csv",
          "realAdExchange/exchange-2_cpc_results.csv")


def _nab() -> Path:
    return Path(os.environ.get("NOVACRON_NAB_DATA", ROOT.parent / "shared/data/nab")) / "data"


def workload(ticks: int) -> dict[str, Any]:
    """Static-at-peak worlds on each trace: µs per tick, and a digest of every measurement."""
    digest, per_tick = hashlib.sha256(), {}
    for name in TRACES:
        sim = SimConfig.autoscaling(seed=7, trace=str(_nab() / name))
        world = World(sim.model_copy(update={
            "initial_vms": peak_vms(sim, RewardConfig().slo_latency_ms, ticks)}))
        started = time.perf_counter()
        served = [world.serve() for _ in range(ticks)]
        per_tick[name] = (time.perf_counter() - started) / ticks * 1e6
        digest.update(pickle.dumps([sorted(s.items()) for s in served]))
    return {"us_per_tick": per_tick, "digest": digest.hexdigest()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--baseline-rev", default="25f75bd")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds per tree")
    parser.add_argument("--ticks", type=int, default=20_000)
    parser.add_argument("--out", type=Path, default=ROOT / "bench/results/world_serve.json")
    parser.add_argument("--workload", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.workload:
        print(json.dumps(workload(args.ticks)))
        return
    load = os.getloadavg()
    runs = interleaved(__file__, args.baseline_rev, args.rounds, "--ticks", str(args.ticks))
    result: dict[str, Any] = {
        "bench": "world_serve", "baseline_rev": resolve(args.baseline_rev), "rounds": args.rounds,
        "ticks": args.ticks, "loadavg_before_after": [load, os.getloadavg()],
        "same_measurements": len({r["digest"] for rs in runs.values() for r in rs}) == 1}
    for name, rs in runs.items():
        result[name] = {trace: round(statistics.median(r["us_per_tick"][trace] for r in rs), 1)
                        for trace in TRACES}
    result["ratio_current_to_baseline"] = {
        t: round(result["current"][t] / result["baseline"][t], 3) for t in TRACES}
    write_result(args.out, result)


if __name__ == "__main__":
    main()
