"""Policy engine throughput and latency: RBAC and a 20-policy set, cache on/off, Python floor."""

from __future__ import annotations

import json
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from policies.engine import EngineConfig, RegoEngine, StaticSource
from policies.registry import PolicyRegistry
from policies.source import load_directory

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


def regopy_bare_allow() -> Callable[[dict[str, Any]], Any]:
    """The cheapest regopy call: RBAC `allow` entrypoint with pre-built inputs (machine speed)."""
    from policies._rego_input import make_input, new_interpreter

    interp = new_interpreter()
    interp.add_module("rbac.rego", (POLICY_DIR / "access" / "rbac.rego").read_text())
    entry = "novacron/access/rbac/allow"
    bundle = interp.build(None, [entry])
    prebuilt = {id(v): make_input(v) for v in RBAC_INPUTS}

    def call(value: dict[str, Any]) -> Any:
        interp.set_input(prebuilt[id(value)])
        return interp.query_bundle_entrypoint(bundle, entry)

    return call


def measure(
    fn: Callable[[dict[str, Any]], Any], inputs: list[dict[str, Any]], n: int
) -> dict[str, float]:
    for value in inputs:  # warm up: compile bundles, fill caches
        fn(value)
    lat = []
    start = time.perf_counter()
    for i in range(n):
        t0 = time.perf_counter_ns()
        fn(inputs[i % len(inputs)])
        lat.append(time.perf_counter_ns() - t0)
    total = time.perf_counter() - start
    lat.sort()
    return {
        "n": n,
        "evals_per_s": round(n / total, 1),
        "p50_us": round(lat[n // 2] / 1000, 2),
        "p99_us": round(lat[int(n * 0.99)] / 1000, 2),
        "mean_us": round(statistics.fmean(lat) / 1000, 2),
    }


def main(n_rbac: int = 20_000, n_set: int = 4_000, repeats: int = 3) -> dict[str, Any]:
    rbac = [p for p in load_directory(POLICY_DIR) if p.policy_type == "access"]
    policies = twenty_policies()
    engines = {
        "rbac_nocache": RegoEngine(StaticSource(rbac)),
        "rbac_cache": RegoEngine(StaticSource(rbac), EngineConfig(cache_size=4096)),
        "set20_nocache": RegoEngine(StaticSource(policies)),
        "set20_cache": RegoEngine(StaticSource(policies), EngineConfig(cache_size=4096)),
    }
    cases: dict[str, tuple[Callable[[dict[str, Any]], Any], list[dict[str, Any]], int]] = {
        "python_rbac_floor": (python_rbac, RBAC_INPUTS, n_rbac),
        "regopy_bare_allow_prebuilt_input": (regopy_bare_allow(), RBAC_INPUTS, n_rbac),
        "rbac_nocache": (
            lambda v: engines["rbac_nocache"].evaluate(v, types=("access",)),
            RBAC_INPUTS,
            n_rbac,
        ),
        "rbac_cache": (
            lambda v: engines["rbac_cache"].evaluate(v, types=("access",)),
            RBAC_INPUTS,
            n_rbac,
        ),
        "set20_nocache": (lambda v: engines["set20_nocache"].evaluate(v), GATE_INPUTS, n_set),
        "set20_cache": (lambda v: engines["set20_cache"].evaluate(v), GATE_INPUTS, n_set),
    }
    # Interleave repeats so machine noise spreads over every case; report the median run.
    runs: dict[str, list[dict[str, float]]] = {k: [] for k in cases}
    for _ in range(repeats):
        for name, (fn, inputs, n) in cases.items():
            runs[name].append(measure(fn, inputs, n))
    results = {k: sorted(v, key=lambda r: r["evals_per_s"])[len(v) // 2] for k, v in runs.items()}
    report = {
        "bench": "policy",
        "machine": {
            "python": platform.python_version(),
            "cpu": platform.processor() or platform.machine(),
        },
        "policies_in_set": len(policies),
        "results": results,
        "rbac_vs_python_floor": round(
            results["python_rbac_floor"]["evals_per_s"] / results["rbac_nocache"]["evals_per_s"], 1
        ),
        "target_rbac_nocache_evals_per_s": 20_000,
        "meets_target": results["rbac_nocache"]["evals_per_s"] >= 20_000,
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(report, indent=2) + "\n")
    return report


if __name__ == "__main__":
    print(json.dumps(main(), indent=2))
