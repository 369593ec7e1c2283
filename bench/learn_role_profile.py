"""Where the learn role's CPU goes per record on `bench/e2e_latency.py`'s workload, without Kafka.

The learn role's whole wiring (every agent of `rows_of("learn")`, as the worker builds it) is fed
the end-to-end bench's samples (100 services round-robin, every fifth overloaded, 1 ms apart,
the bench's 3 s DQN cooldown) through `HostCore.process` in batches of `--batch` records, on
one thread: decode, dispatch, every agent, the checkpoint book, the metrics. Sends and state
saves are not in it (bench/e2e_latency.py has them, with the broker). Reported: thread CPU per
record, the share of it inside each agent's `handle`, outputs and decisions per record, and
with `--profile` the top functions by own time (cProfile, which itself slows the run ~2x).

Run: python bench/learn_role_profile.py [--records 20000] [--batch 7] [--profile]
Writes bench/results/learn_role_profile.json.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import time
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from _e2e_load import sample

from agents.ingest import RawRecord
from schemas import Event
from schemas.codec import Codec
from streams.host_metrics import HostMetrics
from streams.runner import RoleRunner
from streams.settings import Settings
from streams.state import MemoryStateStore
from streams.wiring import rows_of

OUT = Path(__file__).parent / "results" / "learn_role_profile.json"
BENCH_ENV = {"NOVACRON_DECISION__SAFETY__COOLDOWN_SECONDS": "3",
             "NOVACRON_DECISION__SAFETY__MAX_ACTIONS_PER_WINDOW": "1000"}


class _NoSends:
    async def emit(self, events: list[Event]) -> int:
        return len(events)


def _records(settings: Settings, codec: Codec, n: int) -> list[RawRecord]:
    topic, t0 = settings.kafka.topic("metrics"), datetime.now(UTC)
    out = []
    for i in range(n):
        event = sample("profile", i, 100).model_copy(
            update={"event_time": t0 + timedelta(milliseconds=i)})
        out.append(RawRecord(topic, i % settings.kafka.partitions, i, event.key.encode(),
                             codec.encode(event.stamped())))
    return out


def _timed_agents(runner: RoleRunner, spent: dict[str, int]) -> None:
    """Wrap each agent's `handle` to add its thread CPU to `spent[name]`."""
    for hosted in runner.core.hosted:
        agent, inner = hosted.agent, hosted.agent.handle

        def handle(event: Event, _inner: Any = inner, _name: str = agent.name) -> list[Event]:
            c0 = time.thread_time_ns()
            try:
                return list(_inner(event))
            finally:
                spent[_name] += time.thread_time_ns() - c0

        agent.handle = handle  # type: ignore[method-assign]


def run(n: int, batch: int, profile: bool) -> dict[str, Any]:
    os.environ.update(BENCH_ENV)
    settings, codec = Settings(), Codec()
    runner = RoleRunner(settings, "learn", rows_of("learn"), emitter=_NoSends(),  # type: ignore[arg-type]
                        codec=codec, store=MemoryStateStore(), metrics=HostMetrics(registry=None))
    core = runner.core
    core.loaded |= set(range(settings.kafka.partitions))  # nothing to restore
    spent: dict[str, int] = defaultdict(int)
    _timed_agents(runner, spent)
    records = _records(settings, codec, n)
    prof = cProfile.Profile() if profile else None
    outputs = decisions = 0
    c0 = time.thread_time_ns()
    if prof:
        prof.enable()
    for i in range(0, n, batch):
        done = core.process(records[i:i + batch])
        outputs += len(done.outputs)
        decisions += sum(1 for e in done.outputs if e.event_type == "Decision")
    if prof:
        prof.disable()
    cpu = time.thread_time_ns() - c0
    result: dict[str, Any] = {
        "records": n, "batch": batch, "cpu_us_per_record": round(cpu / n / 1000, 1),
        "share_in_agent_handle": {k: round(v / cpu, 3) for k, v in sorted(spent.items())},
        "outputs_per_record": round(outputs / n, 3),
        "decisions_per_record": round(decisions / n, 3), "profiled": profile}
    if prof:
        text = io.StringIO()
        pstats.Stats(prof, stream=text).sort_stats("tottime").print_stats(25)
        result["top_own_time"] = text.getvalue().splitlines()[-30:]
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=7, help="records per process() call "
                        "(7: the median batch of the learn role at 1,000 samples/s)")
    parser.add_argument("--profile", action="store_true", help="add cProfile's top functions")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    result = run(args.records, args.batch, args.profile)
    result["loadavg"] = os.getloadavg()
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
