"""What resolving the action costs the gate, and how fast a hostile runbook file is refused.

- gate: `Resolver.resolve` alone, and `PolicyGate.evaluate` per decision (resolution, Rego over
  the shipped policies, verdict and action events) against `RegoEngine.evaluate` alone on the
  very inputs the gate built (the baseline).
- runbook files: refusing a billion-laughs runbook (10^9 nodes once expanded, 1 KB of YAML)
  against loading the shipped scale-up runbook (the baseline), both through `load_text`.
"""

from __future__ import annotations

import json
import platform
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from agents.gate import GateConfig, PolicyGate
from policies.engine import RegoEngine, StaticSource
from policies.source import load_directory
from runbooks.loader import LIBRARY_DIR, Library, load_text
from runbooks.model import ValidationError
from runbooks.resolve import Resolver
from schemas import Decision

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "results" / "gate.json"
T0 = datetime(2026, 12, 1, tzinfo=UTC)
CTX = {"resource": {"environment": "staging", "active_vms": 4, "cost_per_hour": 8}}
DECISIONS = [
    Decision(resource_id=f"svc-{i}", decision_type=kind, params=params, confidence=0.9)
    for i, (kind, params) in enumerate([
        ("scale_up", {"delta": 2}), ("scale_down", {"delta": 1}),
        ("migrate_vm", {"target_region": "eu-west-1"}), ("rebalance_load", {}),
        ("disable_feature", {"feature": "cache"}), ("no_action", {}),
    ])
]


def bomb(levels: int = 9, width: int = 9) -> str:
    head = "metadata: {id: bomb}\nsteps:\n  - id: s\n    action_type: noop\n    parameters:\n"
    lines = ["      l0: &l0 [" + ", ".join(["lol"] * width) + "]"]
    lines += [f"      l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * width) + "]"
              for i in range(1, levels)]
    return head + "\n".join(lines) + f"\n      use: *l{levels - 1}\n"


def measure(fn: Callable[[int], Any], n: int) -> dict[str, float]:
    fn(0)  # warm up: compile bundles, fill caches
    lat = []
    start = time.perf_counter()
    for i in range(n):
        t0 = time.perf_counter_ns()
        fn(i)
        lat.append(time.perf_counter_ns() - t0)
    total = time.perf_counter() - start
    lat.sort()
    return {"n": n, "per_s": round(n / total, 1), "p50_us": round(lat[n // 2] / 1000, 1),
            "p99_us": round(lat[int(n * 0.99)] / 1000, 1),
            "mean_us": round(statistics.fmean(lat) / 1000, 1)}


def refuse_bomb(_: int) -> None:
    try:
        load_text(bomb())
    except ValidationError:
        return
    raise AssertionError("the bomb loaded")


def main(n_gate: int = 3_000, n_files: int = 200, repeats: int = 3) -> dict[str, Any]:
    engine = RegoEngine(StaticSource(load_directory(ROOT / "policies" / "rego")))
    gate = PolicyGate(engine, GateConfig(), Resolver(Library().get))
    inputs = [gate.build_input(d, CTX, T0) for d in DECISIONS]
    types = GateConfig().policy_types
    scale_up = (LIBRARY_DIR / "scale-up.yaml").read_text()
    resolver = gate.resolver
    cases: dict[str, tuple[Callable[[int], Any], int]] = {
        "resolve_only": (lambda i: resolver.resolve(DECISIONS[i % 6].decision_type,
                                                    DECISIONS[i % 6].params), n_gate),
        "gate_evaluate": (lambda i: gate.evaluate(DECISIONS[i % 6], CTX, now=T0), n_gate),
        "engine_only_same_inputs": (lambda i: engine.evaluate(inputs[i % 6], types=types),
                                    n_gate),
        "refuse_billion_laughs": (refuse_bomb, n_files),
        "load_scale_up_runbook": (lambda i: load_text(scale_up), n_files),
    }
    runs: dict[str, list[dict[str, float]]] = {k: [] for k in cases}
    for _ in range(repeats):  # interleaved, the median run is reported
        for name, (fn, n) in cases.items():
            runs[name].append(measure(fn, n))
    results = {k: sorted(v, key=lambda r: r["per_s"])[len(v) // 2] for k, v in runs.items()}
    report = {
        "bench": "gate",
        "machine": {"python": platform.python_version(),
                    "cpu": platform.processor() or platform.machine()},
        "results": results,
        "resolution_share_of_gate_p50": round(results["resolve_only"]["p50_us"]
                                              / results["gate_evaluate"]["p50_us"], 3),
        "bomb_vs_normal_load": round(results["refuse_billion_laughs"]["mean_us"]
                                     / results["load_scale_up_runbook"]["mean_us"], 2),
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(report, indent=2) + "\n")
    return report


if __name__ == "__main__":
    print(json.dumps(main(), indent=2))
