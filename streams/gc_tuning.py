"""The cyclic garbage collector kept off the workers' hot paths (the ingest and host roles)."""

from __future__ import annotations

import gc

__all__ = ["GC_THRESHOLDS", "tune_gc"]

GC_THRESHOLDS = (50_000, 20, 100)
"""Collector thresholds of a started worker (Python's default is 700, 10, 10)."""


def tune_gc() -> None:
    """Keep the cyclic collector off the hot path, once a worker has started.

    With the default thresholds the collector walks a batch's short-lived containers dozens of
    times per batch (about half of the ingest decode time, bench/README.md), and every few
    thousand records a full collection walks the whole heap of a started worker: ~50 ms in the
    learn role (its models, clients and schemas; bench/README.md, `host_gc`), on the hot path,
    whatever was waiting. Objects made during start-up are moved out of the collector's sight
    (`gc.freeze`: they live as long as the process); cycles are still collected, less often.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)
