"""Policy engine throughput: RBAC and a 20-policy set in batches, both backends, cache on/off,
against a plain Python function and the bare regopy batched call, all in one run."""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from policies.engine import EngineConfig, RegoEngine, StaticSource
from policies.registry import PolicyRegistry
from policies.source import load_directory
from policies.wasm import WasmEngine

ROOT = Path(__file__).resolve().parents[1]
POLICY_DIR = ROOT / "policies" / "rego"
OUT = ROOT / "bench" / "results" / "policy.json"

ROLES = ("admin", "operator", "viewer", "intruder")
ACTIONS = ("read", "write", "evaluate", "approve")
RBAC_INPUTS = [
    {
        "subject": {"user": f"u{i}", "role": r},
        "action": a,
        "resource": {"type": "policy", "id": f"p{i % 7}"},
        "context": {"method": "GET"},
    }
    for i, (r, a) in enumerate((r, a) for r in ROLES for a in ACTIONS)
]
GATE_INPUTS = [
    {
        "subject": {"user": "novacron.dqn", "role": "agent", "origin": "dqn"},
        "action": a,
        "resource": {
            "id": f"svc-{i}",
            "environment": env,
            "active_vms": 3 + i % 5,
            "cost_per_hour": 12.5,
            "labels": {"data_class": "pii" if i % 3 == 0 else "public"},
        },
        "context": {
            "params": {"delta": 1, "target_region": "eu-west-1"},
            "confidence": 0.8,
            "incident": i % 4 == 0,
            "migrations_last_hour": i % 4,
            "mode": "live",
        },
    }
    for i, (a, env) in enumerate(
        (a, e)
        for a in ("scale_up", "scale_down", "migrate_vm", "disable_feature")
        for e in ("staging", "production")
    )
]


def python_rbac(value: dict[str, Any]) -> bool:
    """The RBAC rule of policies/rego/access/rbac.rego, in plain Python (the floor)."""
    role, action = value["subject"]["role"], value["action"]
    if role == "admin":
        return True
    if role == "operator":
        return action in ("read", "evaluate", "approve")
    return role == "viewer" and action == "read"


def twenty_policies() -> list[Any]:
    """The shipped policies plus variants (own package, other thresholds) up to 20."""
    base = load_directory(POLICY_DIR)
    reg = PolicyRegistry()
    reg.seed(base)
    variants = [
        p
        for p in base
        if p.policy_type in ("action_safety", "resource_allocation", "security", "network")
    ]
    i = 0
    while len(reg.current()) < 20:
        src = variants[i % len(variants)]
        pkg = f"{src.policy_id}_v{i}"
        rego = src.rego.replace(f"package {src.policy_id}", f"package {pkg}").replace(
            ":= 3", f":= {3 + i}"
        )
        reg.register(pkg, rego, policy_type=src.policy_type, enforcement=src.enforcement)
        i += 1
    return reg.current()


BARE_RBAC = """package bare
import rego.v1

allowed(r) if r.subject.role == "admin"
allowed(r) if {
	r.subject.role == "operator"
	r.action in {"read", "evaluate", "approve"}
}
allowed(r) if {
	r.subject.role == "viewer"
	r.action == "read"
}
decide(r) := true if allowed(r)
else := false

results := [d | some r in input.requests; d := decide(r)]
"""


def regopy_bare_batched() -> Callable[[list[dict[str, Any]]], Any]:
    """The bare regopy batched call of PERFORMANCE-NOTES: RBAC as a function over a list."""
    from policies._rego_input import make_input, new_interpreter

    interp = new_interpreter()
    interp.add_module("bare.rego", BARE_RBAC)
    bundle = interp.build(None, ["bare/results"])

    def call(batch: list[dict[str, Any]]) -> Any:
        interp.set_input(make_input({"requests": batch}))
        return str(interp.query_bundle_entrypoint(bundle, "bare/results"))

    return call


def measure(fn: Callable[[list[dict[str, Any]]], Any], inputs: list[dict[str, Any]],
            batch: int, seconds: float) -> dict[str, float]:
    """Evaluations/s over whole batches, and the latency of one batch (p50/p99)."""
    batches = [[inputs[(i * batch + j) % len(inputs)] for j in range(batch)] for i in range(8)]
    for b in batches[:2]:  # warm up: compile bundles, build modules
        fn(b)
    lat = []
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        t0 = time.perf_counter_ns()
        fn(batches[len(lat) % len(batches)])
        lat.append(time.perf_counter_ns() - t0)
    total = time.perf_counter() - start
    lat.sort()
    n = len(lat)
    return {
        "batch": batch,
        "batches": n,
        "evals_per_s": round(n * batch / total, 1),
        "batch_p50_us": round(lat[n // 2] / 1000, 1),
        "batch_p99_us": round(lat[min(n - 1, int(n * 0.99))] / 1000, 1),
        "per_eval_mean_us": round(statistics.fmean(lat) / batch / 1000, 2),
    }


Case = tuple[Callable[[list[dict[str, Any]]], Any], list[dict[str, Any]], int]


def cases(batch: int) -> dict[str, Case]:
    """Every case of one run: floors and baselines beside the engines (both backends)."""
    rbac = [p for p in load_directory(POLICY_DIR) if p.policy_type == "access"]
    policies = twenty_policies()
    out: dict[str, Case] = {
        "python_rbac_floor": (lambda b: [python_rbac(v) for v in b], RBAC_INPUTS, batch),
        "regopy_bare_batched_call": (regopy_bare_batched(), RBAC_INPUTS, batch),
    }
    for backend, kind in (("regopy", RegoEngine), ("wasm", WasmEngine)):
        engines = {
            "rbac_nocache": (kind(StaticSource(rbac)), RBAC_INPUTS, ("access",)),
            "rbac_cache": (kind(StaticSource(rbac), EngineConfig(cache_size=4096)), RBAC_INPUTS,
                           ("access",)),
            "set20_nocache": (kind(StaticSource(policies)), GATE_INPUTS, None),
            "set20_cache": (kind(StaticSource(policies), EngineConfig(cache_size=4096)),
                            GATE_INPUTS, None),
        }
        for name, (engine, inputs, types) in engines.items():
            out[f"{backend}_{name}"] = (partial(_batched, engine, types), inputs, batch)
        engine, inputs, types = engines["rbac_nocache"]
        out[f"{backend}_rbac_nocache_one_by_one"] = (partial(_one_by_one, engine, types), inputs,
                                                     batch)
    return out


def _batched(engine: Any, types: Any, batch: list[dict[str, Any]]) -> Any:
    return engine.evaluate_batch(batch, types=types)


def _one_by_one(engine: Any, types: Any, batch: list[dict[str, Any]]) -> Any:
    return [engine.evaluate(v, types=types) for v in batch]


def main(batch: int = 64, seconds: float = 1.5, repeats: int = 3) -> dict[str, Any]:
    load_before = os.getloadavg()
    run = cases(batch)
    # Interleave repeats so machine noise spreads over every case; report the median run.
    runs: dict[str, list[dict[str, float]]] = {k: [] for k in run}
    for _ in range(repeats):
        for name, (fn, inputs, size) in run.items():
            runs[name].append(measure(fn, inputs, size, seconds))
    results = {k: sorted(v, key=lambda r: r["evals_per_s"])[len(v) // 2] for k, v in runs.items()}
    best = max(("regopy", "wasm"), key=lambda b: results[f"{b}_rbac_nocache"]["evals_per_s"])
    report = {
        "bench": "policy",
        "machine": {
            "python": platform.python_version(),
            "cpu": platform.processor() or platform.machine(),
            "cores": os.cpu_count(),
            "loadavg_1_5_15_before": [round(x, 2) for x in load_before],
            "loadavg_1_5_15_after": [round(x, 2) for x in os.getloadavg()],
        },
        "policies_in_set": len(twenty_policies()),
        "batch_size": batch,
        "results": results,
        "faster_backend": best,
        "targets": {"rbac_nocache_evals_per_s": 20_000, "set20_nocache_evals_per_s": 5_000},
        "meets_targets": {
            b: {"rbac": results[f"{b}_rbac_nocache"]["evals_per_s"] >= 20_000,
                "set20": results[f"{b}_set20_nocache"]["evals_per_s"] >= 5_000}
            for b in ("regopy", "wasm")
        },
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(report, indent=2) + "\n")
    return report


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--batch", type=int, default=64, help="inputs per evaluate_batch call")
    parser.add_argument("--seconds", type=float, default=1.5, help="time per case and repeat")
    parser.add_argument("--repeats", type=int, default=3, help="interleaved repeats (median)")
    args = parser.parse_args()
    print(json.dumps(main(args.batch, args.seconds, args.repeats), indent=2))
