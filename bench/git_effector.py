"""The git effector: wall time and CPU (git's child processes included) per committed action,
this tree vs a baseline revision, each in fresh interpreters in interleaved rounds.

Each round seeds a bare repository from the simulator's world (the config repository, as the
executor sees it on a local path) and runs `--actions` approved scale actions one after another
through the executor (clone, edit, commit, push, verify from the remote); every outcome must be
`succeeded`. CPU counts this process and every git process it ran (`RUSAGE_CHILDREN`).

Run: python bench/git_effector.py [--actions 40] [--rounds 3] [--baseline-rev aa53e9a]
     → bench/results/git_effector.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _tree import ROOT, export_tree, resolve, run_workload, write_result

OUT = Path(__file__).parent / "results" / "git_effector.json"
BEFORE = "aa53e9a"
"""main before the git effector's fewer processes per action (81150a3)."""


def _cpu() -> float:
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(
        resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def workload(actions: int) -> dict[str, Any]:
    """One round on the tree this interpreter imports from."""
    from agents.executor import Executor, ExecutorConfig, InMemoryJournal
    from agents.simulator.gitops import seed_repository
    from agents.simulator.world import SimConfig, World
    from runbooks.loader import Library
    from runbooks.resolve import Resolver
    from schemas import Action, Event, Outcome

    world = World(SimConfig(seed=3, services=4, initial_vms=4, drift_probability=0.0,
                            violation_probability=0.0, config_every_ticks=0))
    library = Library()
    with tempfile.TemporaryDirectory(prefix="novacron-git-bench-") as tmp:
        remote = Path(tmp) / "config.git"
        seed_repository(world, remote)
        events: list[Event] = []
        executor = Executor(ExecutorConfig(defaults={"config_repo": str(remote)}),
                            journal=InMemoryJournal(), emit=events.append, library=library)
        wall, cpu = [], []
        for i in range(actions):
            kind = "scale_up" if i % 2 == 0 else "scale_down"  # stays within the VM bounds
            resolved = Resolver(library.get, None).resolve(kind, {"delta": 1})
            action = Action(action_type=kind, params=resolved.variables,
                            runbook=resolved.runbook_id, runbook_hash=resolved.runbook_hash,
                            action_id=f"bench-{i}", resource_id=f"svc-{(i // 2) % 4}")
            t0, c0 = time.perf_counter(), _cpu()
            result = asyncio.run(executor.handle(action))
            wall.append(time.perf_counter() - t0)
            cpu.append(_cpu() - c0)
            if result.status != "succeeded":
                raise RuntimeError(f"action {i} {result.status}: {result.error}")
        finals = [e for e in events if isinstance(e, Outcome) and e.scope == "action"
                  and e.status == "succeeded"]
        assert len(finals) == actions
    return {"wall_s": wall, "cpu_s": cpu}


def _round(tree: Path, actions: int) -> dict[str, list[float]]:
    return run_workload(__file__, tree, "--actions", str(actions))


def _summary(values: list[float]) -> dict[str, float]:
    ms = sorted(v * 1000 for v in values)
    return {"p50_ms": round(statistics.median(ms), 1),
            "p90_ms": round(ms[int(0.9 * (len(ms) - 1))], 1),
            "mean_ms": round(statistics.fmean(ms), 1), "n": len(ms)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--actions", type=int, default=40, help="actions per round")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds per tree")
    parser.add_argument("--baseline-rev", default=BEFORE,
                        help="git revision of the baseline (default: the revision before the "
                             "effector ran fewer git processes)")
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--workload", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.workload:
        print(json.dumps(workload(args.actions)))
        return
    runs: dict[str, dict[str, list[float]]] = {n: {"wall_s": [], "cpu_s": []}
                                               for n in ("baseline", "current")}
    load = [os.getloadavg()[0]]
    with tempfile.TemporaryDirectory(prefix="novacron-git-bench-tree-") as tmp:
        trees = {"baseline": export_tree(args.baseline_rev, Path(tmp)), "current": ROOT}
        for r in range(args.rounds):
            for name, tree in trees.items():
                out = _round(tree, args.actions)
                for key in ("wall_s", "cpu_s"):
                    runs[name][key] += out[key]
                print(f"round {r + 1}/{args.rounds} {name}: cpu p50 "
                      f"{statistics.median(out['cpu_s']) * 1000:.1f} ms per action",
                      file=sys.stderr)
    load.append(os.getloadavg()[0])
    result = {
        "bench": "git_effector", "actions_per_round": args.actions, "rounds": args.rounds,
        "baseline_rev": resolve(args.baseline_rev), "tree": resolve("HEAD"),
        "load_average_1m": [round(x, 2) for x in load],
        **{name: {"wall": _summary(r["wall_s"]), "cpu": _summary(r["cpu_s"])}
           for name, r in runs.items()},
    }
    result["cpu_ratio_current_to_baseline"] = round(
        result["current"]["cpu"]["mean_ms"] / result["baseline"]["cpu"]["mean_ms"], 3)
    write_result(args.out, result)


if __name__ == "__main__":
    main()
