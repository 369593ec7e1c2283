"""Decision latency (state → masked action): numpy path vs torch eager forward; train-step time.

Run: python bench/decision.py [--samples 5000] [--model-dir var/models/dqn]
Writes bench/results/decision.json. Torch is the in-run reference (this bench process may load it;
the decision agent never does).
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np

from agents.decision import DecisionConfig, DecisionEngine
from agents.simulator import SimConfig, World
from models.dqn.checkpoints import CheckpointStore
from models.dqn.policy import QPolicy, init_weights, masked_argmax
from schemas import MetricSample


def _stats(ns: list[int]) -> dict[str, float]:
    us = np.asarray(ns, dtype=np.float64) / 1000.0
    return {"p50_us": round(float(np.percentile(us, 50)), 2),
            "p99_us": round(float(np.percentile(us, 99)), 2),
            "mean_us": round(float(us.mean()), 2), "n": int(us.size)}


def _samples(n: int) -> list[MetricSample]:
    world = World(SimConfig(services=4, seed=11, config_every_ticks=0))
    out: list[MetricSample] = []
    while len(out) < n:
        out.extend(world.step().metrics)
    return out[:n]


def _weights(model_dir: Path) -> tuple[dict[str, np.ndarray], str]:
    store = CheckpointStore(model_dir)
    if store.current():
        return store.load(), str(store.current())
    return init_weights(0), "untrained"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--samples", type=int, default=5000)
    parser.add_argument("--model-dir", type=Path, default=Path("var/models/dqn"))
    parser.add_argument("--out", type=Path, default=Path("bench/results/decision.json"))
    args = parser.parse_args()
    weights, version = _weights(args.model_dir)
    samples = _samples(args.samples)
    engine = DecisionEngine(DecisionConfig(), QPolicy(weights, version))
    decide_ns: list[int] = []
    states: list[np.ndarray] = []
    masks: list[np.ndarray] = []
    for sample in samples:  # the full per-event path: observe, state, mask, forward, Decision
        t0 = time.perf_counter_ns()
        engine.observe(sample)
        engine.decide(sample.resource_id, sample.event_time)
        decide_ns.append(time.perf_counter_ns() - t0)
        state = engine.states.state(sample.resource_id)
        mask = engine.mask(sample.resource_id, sample.event_time)
        assert state is not None and mask is not None
        states.append(state)
        masks.append(mask)
    policy = QPolicy(weights, version)
    numpy_ns = []
    for state, mask in zip(states, masks, strict=True):
        t0 = time.perf_counter_ns()
        masked_argmax(policy.q_values(state), mask)
        numpy_ns.append(time.perf_counter_ns() - t0)

    import torch

    from models.dqn.config import DQNConfig
    from models.dqn.trainer import DQNTrainer

    trainer = DQNTrainer(DQNConfig(threads=1, warmup=64), weights)
    torch_ns, agree = [], 0
    with torch.no_grad():
        for state, mask in zip(states, masks, strict=True):
            t0 = time.perf_counter_ns()
            q = trainer.online(torch.as_tensor(state)).numpy()
            choice = masked_argmax(q, mask)
            torch_ns.append(time.perf_counter_ns() - t0)
            agree += choice == masked_argmax(policy.q_values(state), mask)
    rng = np.random.default_rng(0)
    for _ in range(2000):
        trainer.push(rng.random(9, dtype=np.float32), int(rng.integers(8)), float(rng.random()),
                     rng.random(9, dtype=np.float32))
    trainer.train_steps(20)  # warm up allocations
    step_ns = []
    for _ in range(500):
        t0 = time.perf_counter_ns()
        trainer.train_steps(1)
        step_ns.append(time.perf_counter_ns() - t0)
    result = {
        "bench": "decision", "model_version": version, "python": platform.python_version(),
        "torch": torch.__version__, "torch_threads": torch.get_num_threads(),
        "engine_decide": _stats(decide_ns), "numpy_forward_masked": _stats(numpy_ns),
        "torch_eager_forward_masked": _stats(torch_ns),
        "train_step_batch64": _stats(step_ns),
        "numpy_vs_torch_agreement": round(agree / len(states), 4),
        "speedup_numpy_vs_torch_p50": round(
            _stats(torch_ns)["p50_us"] / max(_stats(numpy_ns)["p50_us"], 1e-9), 2),
        "target": "engine_decide p99 < 1000 us",
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
