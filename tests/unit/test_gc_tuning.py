"""The workers' collector settings: start-up objects frozen, higher thresholds, cycles found."""

from __future__ import annotations

import gc
import weakref

from streams.gc_tuning import GC_THRESHOLDS, tune_gc


class _Node:
    def __init__(self) -> None:
        self.other: _Node | None = None


def test_tune_gc_freezes_what_exists_and_raises_the_thresholds() -> None:
    before = gc.get_threshold()
    started = [[i] for i in range(1000)]  # a worker's start-up state
    try:
        tune_gc()
        assert gc.get_threshold() == GC_THRESHOLDS
        assert gc.get_freeze_count() >= len(started)
        # a cycle made after start-up is still collected (less often, not never)
        a, b = _Node(), _Node()
        a.other, b.other = b, a
        gone = weakref.ref(a)
        del a, b
        gc.collect()
        assert gone() is None
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
