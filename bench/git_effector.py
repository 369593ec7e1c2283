"""The git effector: wall time and CPU (git's child processes included) per committed action,
this tree vs a baseline revision, each in fresh interpreters in interleaved rounds.

Each round seeds a bare repository from the simulator's world (`--services` services: the
config repository, as the executor sees it on a local path) and runs `--actions` approved scale
actions through one executor on one event loop, as the execute role does, `--concurrency` at a
time (clone, edit, commit, push, verify from the remote); the outcomes are counted by status
(one after another every one must be `succeeded`; at once, a step whose pushes kept being
refused fails).
CPU counts this process and every git process it ran (`RUSAGE_CHILDREN`), over the round.

Run: python bench/git_effector.py [--actions 40] [--rounds 3] [--concurrency 1] [--services 4]
     [--baseline-rev aa53e9a] [--out bench/results/git_effector.json]
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
from collections import Counter
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


def workload(actions: int, concurrency: int, services: int) -> dict[str, Any]:
    """One round on the tree this interpreter imports from."""
    from agents.executor import Executor, ExecutorConfig, InMemoryJournal
    from agents.simulator.gitops import seed_repository
    from agents.simulator.world import SimConfig, World
    from runbooks.loader import Library
    from runbooks.resolve import Resolver
    from schemas import Action, Event, Outcome

    world = World(SimConfig(seed=3, services=services, initial_vms=4, drift_probability=0.0,
                            violation_probability=0.0, config_every_ticks=0))
    library = Library()

    def action(i: int) -> Action:
        kind = "scale_up" if i % 2 == 0 else "scale_down"  # stays within the VM bounds
        resolved = Resolver(library.get, None).resolve(kind, {"delta": 1})
        return Action(action_type=kind, params=resolved.variables, runbook=resolved.runbook_id,
                      runbook_hash=resolved.runbook_hash, action_id=f"bench-{i}",
                      resource_id=f"svc-{(i // 2) % services}")

    async def run(executor: Executor) -> list[tuple[float, str]]:
        gate = asyncio.Semaphore(concurrency)

        async def one(i: int) -> tuple[float, str]:
            async with gate:
                t0 = time.perf_counter()
                result = await executor.handle(action(i))
                if result.status != "succeeded" and concurrency == 1:
                    raise RuntimeError(f"action {i} {result.status}: {result.error}")
                return time.perf_counter() - t0, result.status

        return list(await asyncio.gather(*(one(i) for i in range(actions))))

    with tempfile.TemporaryDirectory(prefix="novacron-git-bench-") as tmp:
        remote = Path(tmp) / "config.git"
        seed_repository(world, remote)
        events: list[Event] = []
        executor = Executor(ExecutorConfig(defaults={"config_repo": str(remote)}),
                            journal=InMemoryJournal(), emit=events.append, library=library)
        t0, c0 = time.perf_counter(), _cpu()
        done = asyncio.run(run(executor))
        total_wall, total_cpu = time.perf_counter() - t0, _cpu() - c0
        finals = Counter(e.status for e in events
                         if isinstance(e, Outcome) and e.scope == "action")
    return {"wall_s": [w for w, _ in done], "total_wall_s": total_wall, "total_cpu_s": total_cpu,
            "outcomes": dict(finals)}


def _round(tree: Path, args: argparse.Namespace) -> dict[str, Any]:
    return run_workload(__file__, tree, "--actions", str(args.actions), "--concurrency",
                        str(args.concurrency), "--services", str(args.services))


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
    parser.add_argument("--concurrency", type=int, default=1,
                        help="actions in flight at once (the execute role runs up to 8)")
    parser.add_argument("--services", type=int, default=4,
                        help="services in the seeded config repository (4 files each)")
    parser.add_argument("--baseline-rev", default=BEFORE,
                        help="git revision of the baseline (default: the revision before the "
                             "effector ran fewer git processes)")
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--workload", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.workload:
        print(json.dumps(workload(args.actions, args.concurrency, args.services)))
        return
    runs: dict[str, dict[str, list[float]]] = {
        n: {"wall_s": [], "cpu_per_action_s": [], "actions_per_s": [], "outcomes": []}
        for n in ("baseline", "current")}
    load = [os.getloadavg()[0]]
    with tempfile.TemporaryDirectory(prefix="novacron-git-bench-tree-") as tmp:
        trees = {"baseline": export_tree(args.baseline_rev, Path(tmp)), "current": ROOT}
        for r in range(args.rounds):
            for name, tree in trees.items():
                out = _round(tree, args)
                runs[name]["wall_s"] += out["wall_s"]
                runs[name]["cpu_per_action_s"].append(out["total_cpu_s"] / args.actions)
                runs[name]["actions_per_s"].append(args.actions / out["total_wall_s"])
                runs[name]["outcomes"].append(out["outcomes"])
                print(f"round {r + 1}/{args.rounds} {name}: "
                      f"{out['total_cpu_s'] / args.actions * 1000:.1f} ms CPU per action, "
                      f"{args.actions / out['total_wall_s']:.1f} actions/s", file=sys.stderr)
    load.append(os.getloadavg()[0])
    result = {
        "bench": "git_effector", "actions_per_round": args.actions, "rounds": args.rounds,
        "concurrency": args.concurrency, "services": args.services,
        "baseline_rev": resolve(args.baseline_rev), "tree": resolve("HEAD"),
        "load_average_1m": [round(x, 2) for x in load],
        **{name: {"wall_per_action": _summary(r["wall_s"]),
                  "cpu_per_action_ms": [round(v * 1000, 1) for v in r["cpu_per_action_s"]],
                  "actions_per_s": [round(v, 1) for v in r["actions_per_s"]],
                  "outcomes_per_round": r["outcomes"]}
           for name, r in runs.items()},
    }
    result["cpu_ratio_current_to_baseline"] = round(
        statistics.fmean(runs["current"]["cpu_per_action_s"])
        / statistics.fmean(runs["baseline"]["cpu_per_action_s"]), 3)
    write_result(args.out, result)


if __name__ == "__main__":
    main()
