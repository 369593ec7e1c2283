"""Outputs of the learn role's models and agents on fixed seeded streams, for equivalence tests.

`python -m tests.learn_golden --write` records them in tests/fixtures/learn_golden.json. The
fixture was recorded from the straightforward per-event code (commit c9b8a9e, before the learn
role's per-sample optimisations); tests/unit/test_learn_equivalence.py checks that the code of
today gives exactly the same numbers, decisions and texts.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from agents.decision import DecisionConfig, DecisionEngine
from agents.optimizer import Optimizer, OptimizerConfig
from agents.simulator import SimConfig, World
from models.anomaly import AnomalyDetector
from models.dqn.checkpoints import CheckpointStore
from models.dqn.tracking import BudgetTracking
from models.forecast import ForecastConfig, Forecaster
from models.recommend import Recommender
from schemas import Decision, Event, Insight, MetricSample, Outcome, action_id_for
from streams.decision import policy_for

FIXTURE = Path(__file__).parent / "fixtures" / "learn_golden.json"
GOLDEN_MODEL = "v0004"
"""The shipped model the learn role's outputs were recorded with."""
PRETRAINED = Path(__file__).resolve().parents[1] / "models" / "dqn" / "pretrained"
START = datetime(2026, 1, 1, tzinfo=UTC)
_VOLATILE = {"event_id", "correlation_id", "causation_id", "event_time",
             "produced_at"}  # stamped by the host as it sends, not by the model


def _rows(n: int, seed: int) -> list[dict[str, Any]]:
    """A daily-seasonal stream with spikes, level shifts, gaps and missing values."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        cpu = 40 + 20 * ((i % 288) / 288) + rng.gauss(0, 3) + (50 if i % 997 == 500 else 0)
        cpu += 15 if i > n * 2 // 3 else 0
        rows.append({
            "t": START + timedelta(minutes=5 * i + (30 if i % 401 == 7 else 0)),
            "cpu_usage": min(100.0, max(0.0, cpu)),
            "memory_usage": 50 + rng.gauss(0, 2) if i % 7 else None,
            "network_latency_ms": 20 + rng.expovariate(0.5),
            "cost_per_hour": 1.5 if i < n // 2 else 1.8,
            "active_vms": 3 + (i // 500) % 3,
        })
    return rows


def model_outputs(n: int = 2500, seed: int = 3) -> dict[str, Any]:
    """Every model's prequential outputs, one per row."""
    rows = _rows(n, seed)
    forecaster = Forecaster(ForecastConfig(horizon=3))
    detector = AnomalyDetector()
    recommender = Recommender()
    out: dict[str, list[Any]] = {"forecast": [], "forecast_error": [], "anomaly": [],
                                 "recommend": []}
    for row in rows:
        out["forecast_error"].append(forecaster.score_one(row["cpu_usage"]))
        forecaster.learn_one(row["cpu_usage"], row["t"])
        f = forecaster.predict_one()
        out["forecast"].append(None if f is None else [f.value, f.lower, f.upper, f.weights])
        x = {k: row[k] for k in ("cpu_usage", "memory_usage", "network_latency_ms")
             if row[k] is not None}
        out["anomaly"].append(detector.score_learn(x))
        recommender.learn_one(row)
        out["recommend"].append([r.kind for r in recommender.predict_one()])
    return out


def _event(e: Event) -> dict[str, Any]:
    data = e.model_dump(mode="json", exclude=_VOLATILE)
    return {"type": type(e).__name__, **data}


def _samples(n: int) -> list[MetricSample]:
    world = World(SimConfig(services=4, seed=11, config_every_ticks=0))
    out: list[MetricSample] = []
    while len(out) < n:
        out.extend(world.step().metrics)
    return out[:n]


def learn_role_outputs(n: int = 3000) -> dict[str, Any]:
    """The learn role's agents in-process: samples → optimizer → insights → decision engine."""
    # The model the fixture was recorded with, loaded as a worker loads it (with its budget),
    # without budget tracking (which came later and has its own tests): shipping a new model
    # or tuning the tracker is a change of behaviour, not of the code this fixture guards.
    policy = policy_for(GOLDEN_MODEL, CheckpointStore(PRETRAINED))
    optimizer = Optimizer(OptimizerConfig(forecast_every=5, recommend_every=20,
                                          auto_apply_confidence=0.5))
    config = DecisionConfig()
    config.features.budget_tracking = BudgetTracking(rate=0.0)
    engine = DecisionEngine(config, policy)
    events: list[Any] = []
    states: list[Any] = []
    for i, sample in enumerate(_samples(n)):
        emitted = optimizer.process(sample)
        for e in emitted:
            if isinstance(e, Insight):
                engine.handle(e)
        decisions = engine.handle(sample)
        for d in decisions:
            if isinstance(d, Decision) and i % 3 == 0:
                status = "failed" if i % 9 == 0 else "succeeded"
                engine.handle(Outcome(action_id=action_id_for(d.event_id),
                                      resource_id=d.resource_id, status=status,
                                      event_time=sample.event_time))
        events.append([_event(e) for e in [*emitted, *decisions]])
        state = engine.states.state(sample.resource_id, sample.event_time)
        mask = engine.mask(sample.resource_id, sample.event_time)
        states.append(None if state is None or mask is None
                      else [[float(v) for v in state], [bool(m) for m in mask]])
    return {"events": events, "states": states, "rewards": engine.rewards,
            "quality": optimizer.quality(),
            "transitions": [[[float(v) for v in t[0]], t[1], t[2], [float(v) for v in t[3]],
                             [bool(m) for m in t[5]]] for t in engine.take_transitions()]}


def outputs() -> dict[str, Any]:
    """Everything the equivalence test compares (JSON-ready)."""
    return json.loads(json.dumps({"models": model_outputs(), "learn_role": learn_role_outputs()}))


def digest(value: Any) -> str:
    """A short hash of a JSON value (floats by their exact repr)."""
    text = json.dumps(value, sort_keys=True, allow_nan=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


CHUNK = 25
"""Steps per digest of a list (a test names the chunk that differs)."""


def digests(data: dict[str, Any]) -> dict[str, Any]:
    """A digest per CHUNK steps of every list, one digest for everything else."""
    out: dict[str, Any] = {}
    for section, values in data.items():
        out[section] = {
            name: [digest(value[i:i + CHUNK]) for i in range(0, len(value), CHUNK)]
            if isinstance(value, list) else digest(value)
            for name, value in values.items()
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--write", action="store_true", help="record the fixture")
    args = parser.parse_args()
    data = outputs()
    if args.write:
        rev = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                             check=True).stdout.strip()
        FIXTURE.write_text(json.dumps({"recorded_at": rev, **digests(data)}) + "\n")
    print(f"{len(data['learn_role']['events'])} learn-role steps, "
          f"{sum(len(e) for e in data['learn_role']['events'])} events")


if __name__ == "__main__":
    main()
