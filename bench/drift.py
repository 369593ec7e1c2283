"""Drift diffs per second for 50-field configs against a json.dumps(sort_keys=True) floor.

Run: `python bench/drift.py [--seconds 1.0] [--repeats 3]`; writes bench/results/drift.json.
Single-threaded, so the rates are per core. Each case's current config is a fresh object
decoded from JSON (as it arrives from Kafka); the baseline snapshot is built once and cached.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import time
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import orjson

from agents.drift import DriftConfig, DriftDetector, DriftEngine, Snapshot, desired_state
from schemas import ConfigChange

RESULTS = Path(__file__).parent / "results" / "drift.json"
TARGET_CLEAN = 50_000
SEED = 7


def baseline_config() -> dict[str, Any]:
    """50 leaf fields: 36 scalars, 10 tags, a 4-leaf nested block (typical VM / bucket shape)."""
    rng = random.Random(SEED)
    cfg: dict[str, Any] = {}
    for i in range(36):
        kind = i % 4
        cfg[f"field_{i:02d}"] = (
            rng.randrange(1000),
            f"value-{rng.random():.6f}",
            bool(i % 3),
            round(rng.random() * 100, 3),
        )[kind]
    cfg["tags"] = {f"tag{i}": f"v{i}" for i in range(10)}
    cfg["block"] = {"size": 40, "type": "gp3", "iops": 3000, "throughput": 125}
    return cfg


def drifted(cfg: dict[str, Any], n: int) -> dict[str, Any]:
    out = json.loads(json.dumps(cfg))
    for key in [k for k in out if k.startswith("field_")][:n]:
        out[key] = "drifted"
    return out


def rate(fn: Callable[[], Any], seconds: float, repeats: int) -> float:
    """Best-of-`repeats` calls per second of `fn`, each run lasting about `seconds`."""
    best = 0.0
    for _ in range(repeats):
        n, start = 0, time.perf_counter()
        deadline = start + seconds
        while True:
            for _ in range(200):
                fn()
            n += 200
            now = time.perf_counter()
            if now >= deadline:
                break
        best = max(best, n / (now - start))
    return best


def _compare(engine: DriftEngine, snap: Snapshot, current: dict[str, Any]) -> Callable[[], Any]:
    return lambda: engine.compare("novacron_vm", snap, current)


def _floor(current: dict[str, Any], floor_base: str) -> Callable[[], bool]:
    # The naive alternative: serialise with sorted keys and compare strings.
    return lambda: json.dumps(current, sort_keys=True) == floor_base


def cases() -> dict[str, dict[str, Any]]:
    base = baseline_config()
    normalised_twin = json.loads(json.dumps(base)) | {"notes": "", "labels": {}}
    normalised_twin["block"]["size"] = 40.0  # 40 == 40.0; absent == "" == {}
    return {
        "clean": json.loads(json.dumps(base)),
        "clean_normalised": normalised_twin,
        "drift_1_field": drifted(base, 1),
        "drift_30_percent": drifted(base, 15),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=1.0)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    base = baseline_config()
    engine = DriftEngine(DriftConfig())
    snap = engine.snapshot(base)
    floor_base = json.dumps(base, sort_keys=True)
    detector = DriftDetector(DriftConfig(dedupe=False))
    detector.on_baseline(desired_state("vm-1", "novacron_vm", base))
    results: dict[str, Any] = {}
    for name, payload in cases().items():
        raw = orjson.dumps(payload)
        current = orjson.loads(raw)
        report = engine.compare("novacron_vm", snap, current)
        change = ConfigChange(resource_id="vm-1", resource_type="novacron_vm", config=current)
        results[name] = {
            "drifted_fields": len(report.changes),
            "severity": report.severity if report.drifted else None,
            "engine_diffs_per_s": round(
                rate(_compare(engine, snap, current), args.seconds, args.repeats)
            ),
            "detector_on_config_per_s": round(
                rate(partial(detector.on_config, change), args.seconds, args.repeats)
            ),
            "floor_json_dumps_eq_per_s": round(
                rate(_floor(current, floor_base), args.seconds, args.repeats)
            ),
        }
        r = results[name]
        r["engine_vs_floor"] = round(r["engine_diffs_per_s"] / r["floor_json_dumps_eq_per_s"], 2)
        print(
            f"{name:18s} engine {r['engine_diffs_per_s']:>9,}/s  "
            f"detector {r['detector_on_config_per_s']:>9,}/s  "
            f"floor json.dumps {r['floor_json_dumps_eq_per_s']:>9,}/s  "
            f"({r['drifted_fields']} changes, {r['severity']})"
        )
    out = {
        "benchmark": "drift",
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "machine": platform.machine(),
        "load_average_1m": round(os.getloadavg()[0], 2),  # the machine is shared: context
        "fields": 50,
        "seconds_per_run": args.seconds,
        "repeats": args.repeats,
        "target_clean_diffs_per_s": TARGET_CLEAN,
        "meets_target": results["clean"]["engine_diffs_per_s"] >= TARGET_CLEAN,
        "cases": results,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
