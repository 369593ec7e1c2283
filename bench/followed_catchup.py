"""The followed topics' catch-up that precedes every host batch, on the real broker, this tree
against a baseline revision.

`FollowedTopics.catch_up` asks the followed topics for their end offsets and folds what is new.
Each tree runs the same workload in a fresh interpreter (interleaved rounds): a role's followed
readers on fresh topics, `--calls` timed catch-ups, then `--idle` seconds with nothing to do.
Nothing is written to the topics, so both measure an idle control plane: the usual case.
Reported per tree: the catch-up's wall time (p50/p90/p99), the Kafka requests it sent (by type,
per catch-up), and the requests per second the idle readers send (their held fetches). The
requests are counted inside the bench process by wrapping the client connection's `send`.

Run: python bench/followed_catchup.py [--role govern] [--calls 300] [--idle 10]
         [--baseline-rev HEAD] [--rounds 3]           (needs `novacron kafka start`)
Writes bench/results/followed_catchup.json (`…_learn.json` for --role learn).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
from _tree import comparison_args, interleaved, resolve, write_result
from aiokafka import conn

from agents.shared import SharedState
from schemas.codec import Codec
from streams.followed import FollowedTopics
from streams.host_metrics import HostMetrics
from streams.settings import KafkaConfig, Settings
from streams.topics import create_topics
from streams.wiring import rows_of

RESULTS = Path(__file__).parent / "results"

SENT: Counter[str] = Counter()
"""Kafka requests sent by this process, by request type."""


def _count_requests() -> None:
    send = conn.AIOKafkaConnection.send

    def counted(self: conn.AIOKafkaConnection, request: Any, *args: Any, **kwargs: Any) -> Any:
        SENT[type(request).__name__] += 1
        return send(self, request, *args, **kwargs)

    conn.AIOKafkaConnection.send = counted  # type: ignore[method-assign]


async def workload(role: str, calls: int, idle: float) -> dict[str, Any]:
    """One tree: timed catch-ups, then the idle readers' requests."""
    _count_requests()
    settings = Settings(kafka=KafkaConfig(topic_prefix=f"bench-{uuid.uuid4().hex[:8]}."))
    await create_topics(settings.kafka)
    topics = sorted({t for r in rows_of(role) for t in r.follows})
    followed = FollowedTopics(SharedState(Codec()), settings.kafka, topics,
                              metrics=HostMetrics(registry=None), role=role)
    await followed.start()
    try:
        await followed.catch_up()
        ms: list[float] = []
        before = Counter(SENT)
        for _ in range(calls):
            t0 = time.perf_counter()
            await followed.catch_up()
            ms.append((time.perf_counter() - t0) * 1000)
        per_call = {k: round((v - before[k]) / calls, 2) for k, v in SENT.items()
                    if v > before[k]}
        before = Counter(SENT)
        await asyncio.sleep(idle)
        idle_rate = {k: round((v - before[k]) / idle, 1) for k, v in SENT.items()
                     if v > before[k]}
    finally:
        await followed.stop()
    return {"topics": topics, "catch_up_ms": ms, "requests_per_catch_up": per_call,
            "idle_requests_per_s": idle_rate}


def _summary(runs: list[dict[str, Any]]) -> dict[str, Any]:
    ms = np.asarray([m for r in runs for m in r["catch_up_ms"]])
    kinds = {k for r in runs for k in (*r["requests_per_catch_up"], *r["idle_requests_per_s"])}
    return {
        "catch_up_ms": {f"p{q}": round(float(np.percentile(ms, q)), 2) for q in (50, 90, 99)},
        "requests_per_catch_up": {k: statistics.median(r["requests_per_catch_up"].get(k, 0)
                                                       for r in runs) for k in sorted(kinds)},
        "idle_requests_per_s": {k: statistics.median(r["idle_requests_per_s"].get(k, 0)
                                                     for r in runs) for k in sorted(kinds)},
        "topics": runs[0]["topics"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--role", default="govern", help="whose followed topics (govern: 6)")
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--idle", type=float, default=10.0, help="seconds of idle readers")
    comparison_args(parser, None)
    args = parser.parse_args()
    if args.workload:
        print(json.dumps(asyncio.run(workload(args.role, args.calls, args.idle))))
        return
    load = os.getloadavg()
    runs = interleaved(__file__, args.baseline_rev, args.rounds, "--role", args.role,
                       "--calls", str(args.calls), "--idle", str(args.idle))
    suffix = "" if args.role == "govern" else f"_{args.role}"
    write_result(args.out or RESULTS / f"followed_catchup{suffix}.json", {
        "bench": "followed_catchup", "role": args.role, "baseline_rev": resolve(args.baseline_rev),
        "calls": args.calls, "idle_seconds": args.idle, "rounds": args.rounds,
        **{name: _summary(rs) for name, rs in runs.items()},
        "loadavg_before_after": [load, os.getloadavg()]})


if __name__ == "__main__":
    main()
