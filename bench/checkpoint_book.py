"""The checkpoint book's per-batch work as a worker holds more keys: this tree vs a baseline.

Per batch a host touches the keys of its records and asks every agent's book which keys are due
(`CheckpointBook.due`), then marks what it saved. Here one book (the decision agent's policy:
every 100 inputs or 30 s, on output) holds `--keys` keys, all saved once; then batches of 7
inputs to random keys, one of them emitting, 1 ms apart, each followed by `due` and the saves,
as `HostCore` does. Each tree runs in a fresh interpreter, interleaved; reported: µs of CPU per
batch (touches, `due`, saves) by key count.

Run: python bench/checkpoint_book.py [--keys 100,1000,10000] [--batches 20000] [--rounds 3]
     [--baseline-rev REV]
Writes bench/results/checkpoint_book.json.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import time
from pathlib import Path
from typing import Any

from _tree import comparison_args, interleaved, median_by_size, resolve, write_result

from streams.state import CheckpointBook

OUT = Path(__file__).parent / "results" / "checkpoint_book.json"


def workload(keys: int, batches: int) -> float:
    """µs of thread CPU per batch with `keys` keys in the book."""
    rng = random.Random(7)
    book = CheckpointBook(every_events=100, max_age_seconds=30.0, on_output=True)
    names = [f"svc-{i}" for i in range(keys)]
    for i, name in enumerate(names):
        book.touched(name, ("metrics", i % 4, i))
        book.saved(name, 0.0)
    clock, offset = 0.0, keys
    c0 = time.thread_time_ns()
    for _ in range(batches):
        clock += 0.001
        batch = [rng.choice(names) for _ in range(7)]
        for name in batch:
            offset += 1
            book.touched(name, ("metrics", 0, offset))
        book.emitted(batch[0])
        for name in book.due(clock):
            book.saved(name, clock)
    return (time.thread_time_ns() - c0) / batches / 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--keys", default="100,1000,10000")
    parser.add_argument("--batches", type=int, default=20_000)
    comparison_args(parser, OUT)
    args = parser.parse_args()
    counts = [int(k) for k in args.keys.split(",")]
    if args.workload:
        print(json.dumps({str(k): workload(k, args.batches) for k in counts}))
        return
    load = os.getloadavg()
    runs = interleaved(__file__, args.baseline_rev, args.rounds, "--keys", args.keys,
                       "--batches", str(args.batches))
    result: dict[str, Any] = {
        "bench": "checkpoint_book", "baseline_rev": resolve(args.baseline_rev),
        "batches": args.batches, "rounds": args.rounds,
        "us_per_batch": median_by_size(runs, counts, 2),
        "loadavg_before_after": [load, os.getloadavg()]}
    write_result(args.out, result)


if __name__ == "__main__":
    main()
