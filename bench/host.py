"""The generic host's own cost on the learn role's path: decode once, dispatch, hand insights on.

Baseline in the same run: the optimizer and the decision engine called directly on events
decoded beforehand (the agents' work alone), and the former learn wiring's shape, which decoded
each metrics record twice (once per agent) and sent insights through Kafka (not measured here).

Run: python bench/host.py [--records N]  → bench/results/host.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import random
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from agents.decision import DecisionEngine
from agents.ingest import RawRecord
from agents.optimizer import Optimizer
from schemas import Insight, MetricSample
from schemas.codec import Codec
from streams.decision import load_policy, model_store
from streams.host import HostCore, Hosted, InputTopic
from streams.host_metrics import HostMetrics
from streams.settings import Settings
from streams.state import CheckpointBook, MemoryStateStore

OUT = Path(__file__).parent / "results" / "host.json"
T0 = datetime(2026, 1, 1, tzinfo=UTC)
TOPIC = "novacron.metrics"
CODEC = Codec()


def _records(n: int, resources: int = 50) -> list[RawRecord]:
    rng = random.Random(0)
    out = []
    for i in range(n):
        r = i % resources
        sample = MetricSample(
            resource_id=f"svc-{r}" if r % 2 else f"vm-{r}",
            resource_type="service" if r % 2 else "vm",
            event_time=T0 + timedelta(minutes=i // resources), cpu_usage=40 + 30 * rng.random(),
            memory_usage=50.0, network_latency_ms=80 + 40 * rng.random(), error_rate=0.001,
            request_rate=300 + 100 * rng.random(), active_vms=4, cost_per_hour=0.4)
        out.append(RawRecord(TOPIC, r % 4, i, sample.resource_id.encode(), CODEC.encode(sample)))
    return out


def _agents() -> tuple[Optimizer, DecisionEngine]:
    settings = Settings()
    return Optimizer(settings.optimizer), DecisionEngine(settings.decision,
                                                         load_policy(model_store(settings)))


def _direct(records: list[RawRecord]) -> float:
    optimizer, engine = _agents()
    events = [CODEC.decode(r.value, MetricSample) for r in records]  # decoded beforehand
    start = time.perf_counter()
    for e in events:
        out = optimizer.handle(e)
        engine.handle(e)
        for o in out:
            if isinstance(o, Insight):
                engine.handle(o)
    return len(events) / (time.perf_counter() - start)


def _decode_twice(records: list[RawRecord]) -> float:
    optimizer, engine = _agents()
    start = time.perf_counter()
    for r in records:  # the former wiring: each agent decoded the record itself
        optimizer.handle(CODEC.decode(r.value, MetricSample, event_id=lambda: "x"))
        engine.handle(CODEC.decode(r.value, MetricSample, event_id=lambda: "x"))
    return len(records) / (time.perf_counter() - start)


def _hosted(records: list[RawRecord]) -> float:
    optimizer, engine = _agents()

    async def emit(events: list[Any]) -> int:
        return len(events)

    core = HostCore("learn", [Hosted(optimizer, CheckpointBook(500, 300.0)),
                              Hosted(engine, CheckpointBook(1, 60.0))],
                    [InputTopic(TOPIC, MetricSample, external=True)], MemoryStateStore(), emit,
                    CODEC, HostMetrics(registry=None))
    start = time.perf_counter()
    for i in range(0, len(records), 500):
        core.process(records[i:i + 500])
    return len(records) / (time.perf_counter() - start)


def bench(n: int, repeats: int) -> dict[str, Any]:
    records = _records(n)
    runs = {name: sorted(fn(records) for _ in range(repeats))[repeats // 2] for name, fn in
            (("agents_direct", _direct), ("decode_per_agent", _decode_twice),
             ("host_process", _hosted))}
    return {
        "records": n, "repeats": repeats, "python": platform.python_version(),
        "records_per_second": {k: round(v, 1) for k, v in runs.items()},
        "host_vs_agents_alone": round(runs["host_process"] / runs["agents_direct"], 3),
        "note": "host_process = decode once + dispatch + in-process insights + checkpoint book; "
                "emit and state saves are not in it (one awaited send per batch)",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    result = asyncio.run(asyncio.to_thread(bench, args.records, args.repeats))
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
