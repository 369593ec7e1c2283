"""Workflow engine: overhead per no-op step, 1k/10k concurrent workflows, parallel speedup.

Every figure is measured in this run against a baseline from the same run: bare awaited coroutine
calls for the per-step overhead and the throughput, the ideal (critical-path) time for the speedup.
Usage: `python bench/executor.py [--quick]` → bench/results/executor.json.
"""

from __future__ import annotations

import asyncio
import gc
import json
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from runbooks.engine import Engine
from runbooks.journal import InMemoryJournal
from runbooks.loader import parse_runbook
from runbooks.model import Runbook
from runbooks.runtime import EngineConfig
from schemas import Event

OUT = Path(__file__).resolve().parents[1] / "bench" / "results" / "executor.json"


def chain(n: int, kind: str = "noop", **params: Any) -> Runbook:
    steps = [
        {
            "id": f"s{i}",
            "action_type": kind,
            "parameters": params,
            **({"dependencies": [f"s{i - 1}"]} if i else {}),
        }
        for i in range(n)
    ]
    return parse_runbook({"metadata": {"id": f"chain{n}"}, "steps": steps})


def fan(n: int, seconds: float) -> Runbook:
    steps = [
        {"id": f"s{i}", "action_type": "sleep", "parameters": {"seconds": seconds}}
        for i in range(n)
    ]
    return parse_runbook({"metadata": {"id": f"fan{n}"}, "steps": steps})


def engine(max_parallel: int = 8) -> tuple[Engine, list[Event]]:
    events: list[Event] = []
    cfg = EngineConfig(max_parallel=max_parallel)
    return Engine(cfg, emit=events.append, journal=InMemoryJournal()), events


async def _noop() -> dict[str, Any]:
    return {}


async def baseline_calls(n: int) -> float:
    t0 = time.perf_counter()
    for _ in range(n):
        await _noop()
    return time.perf_counter() - t0


async def per_step_overhead(steps: int, reps: int) -> dict[str, Any]:
    rb = chain(steps)
    per_step, base = [], []
    for _ in range(reps):
        eng, _ = engine()
        gc.collect()
        t0 = time.perf_counter()
        await eng.run(rb, {})
        per_step.append((time.perf_counter() - t0) / steps)
        base.append(await baseline_calls(steps) / steps)
    step_s, base_s = statistics.median(per_step), statistics.median(base)
    return {
        "steps_per_workflow": steps,
        "reps": reps,
        "per_step_us": round(step_s * 1e6, 2),
        "baseline_await_us": round(base_s * 1e6, 3),
        "overhead_per_step_us": round((step_s - base_s) * 1e6, 2),
        "target_us": 1000,
        "meets_target": (step_s - base_s) < 1e-3,
    }


async def concurrent(workflows: int, steps: int) -> dict[str, Any]:
    rb = chain(steps)
    eng, events = engine()
    gc.collect()
    t0 = time.perf_counter()
    results = await asyncio.gather(*(eng.run(rb, {}, action_id=f"a{i}") for i in range(workflows)))
    wall = time.perf_counter() - t0
    ok = sum(r.ok for r in results)
    t1 = time.perf_counter()
    await asyncio.gather(*(_noop() for _ in range(workflows * steps)))
    base = time.perf_counter() - t1
    return {
        "workflows": workflows,
        "steps_each": steps,
        "completed": ok,
        "wall_s": round(wall, 3),
        "workflows_per_s": round(workflows / wall, 1),
        "steps_per_s": round(workflows * steps / wall, 1),
        "events_emitted": len(events),
        "baseline_gather_s": round(base, 4),
    }


async def speedup(n: int, seconds: float, reps: int) -> dict[str, Any]:
    rb = fan(n, seconds)
    walls = []
    for _ in range(reps):
        eng, _ = engine(max_parallel=n)
        t0 = time.perf_counter()
        await eng.run(rb, {})
        walls.append(time.perf_counter() - t0)
    wall = statistics.median(walls)
    serial = n * seconds
    return {
        "independent_steps": n,
        "step_sleep_s": seconds,
        "wall_s": round(wall, 4),
        "ideal_wall_s": seconds,
        "serial_s": serial,
        "speedup": round(serial / wall, 2),
        "ideal_speedup": n,
        "efficiency": round(serial / wall / n, 3),
    }


async def main(quick: bool) -> dict[str, Any]:
    await per_step_overhead(20, 3)  # warm-up: imports, caches
    result = {
        "bench": "executor",
        "python": sys.version.split()[0],
        "machine": platform.machine(),
        "loop": "asyncio",
        "overhead": await per_step_overhead(200, 5 if quick else 15),
        "concurrent_1k": await concurrent(1_000, 3),
        "concurrent_10k": await concurrent(1_000 if quick else 10_000, 3),
        "speedup": await speedup(16, 0.05, 3 if quick else 5),
    }
    return result


if __name__ == "__main__":
    res = asyncio.run(main("--quick" in sys.argv))
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(res, indent=2) + "\n")
    print(json.dumps(res, indent=2))
