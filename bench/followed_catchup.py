"""The followed topics' catch-up that precedes every host batch, on the real broker.

`FollowedTopics.catch_up` asks each followed topic for its end offsets and folds what is new.
This tree asks every topic at once (one round trip's time); the baseline, in the same run and
on the same readers, asks them one after the other, as the host did before. Nothing is written
to the topics while it runs, so both measure the per-batch cost of an idle control plane: the
usual case.

Run: python bench/followed_catchup.py [--role govern] [--calls 300]   (needs `novacron kafka start`)
Writes bench/results/followed_catchup.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
import uuid
from pathlib import Path

import numpy as np

from agents.shared import SharedState
from schemas.codec import Codec
from streams.followed import FollowedTopics
from streams.host_metrics import HostMetrics
from streams.settings import KafkaConfig, Settings
from streams.topics import create_topics
from streams.wiring import rows_of

OUT = Path(__file__).parent / "results" / "followed_catchup.json"


async def _one_by_one(followed: FollowedTopics) -> None:
    """The catch-up as it was: each topic's end offsets, then its records, one topic at a time."""
    async with followed._lock:
        for logical, reader in followed._readers.items():
            await reader.catch_up(followed._folder(logical))


def _stats(ms: list[float]) -> dict[str, float]:
    a = np.asarray(ms)
    return {"p50_ms": round(float(np.percentile(a, 50)), 2),
            "p90_ms": round(float(np.percentile(a, 90)), 2),
            "p99_ms": round(float(np.percentile(a, 99)), 2), "n": int(a.size)}


async def run(role: str, calls: int) -> dict[str, object]:
    settings = Settings(kafka=KafkaConfig(topic_prefix=f"bench-{uuid.uuid4().hex[:8]}."))
    await create_topics(settings.kafka)
    topics = sorted({t for r in rows_of(role) for t in r.follows})
    followed = FollowedTopics(SharedState(Codec()), settings.kafka, topics,
                              metrics=HostMetrics(registry=None), role=role)
    await followed.start()
    times: dict[str, list[float]] = {"one_by_one": [], "at_once": []}
    try:
        for _ in range(calls):  # interleaved: both see the same broker load
            for name, call in (("one_by_one", lambda: _one_by_one(followed)),
                               ("at_once", followed.catch_up)):
                t0 = time.perf_counter()
                await call()
                times[name].append((time.perf_counter() - t0) * 1000)
    finally:
        await followed.stop()
    return {"bench": "followed_catchup", "role": role, "topics": topics,
            "this_tree_at_once": _stats(times["at_once"]),
            "baseline_one_by_one": _stats(times["one_by_one"])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--role", default="govern", help="whose followed topics (govern: 6)")
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    load = os.getloadavg()
    result = asyncio.run(run(args.role, args.calls))
    result["loadavg_before_after"] = [load, os.getloadavg()]
    args.out.write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
