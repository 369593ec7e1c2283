"""River-style contract checks every registered online model must pass."""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator

from models.registry import ModelSpec, sample_stream

__all__ = [
    "check_cold_start",
    "check_deterministic",
    "check_no_input_mutation",
    "check_snapshot_restore",
    "yield_checks",
]


def check_no_input_mutation(spec: ModelSpec, seed: int = 0) -> None:
    """learn and predict leave their inputs exactly as they were."""
    model = spec.make(seed)
    for x in sample_stream(seed, 120):
        before = copy.deepcopy(x)
        spec.predict(model, x)
        spec.learn(model, x)
        assert x == before, f"{spec.name} mutated its input: {before} -> {x}"


def check_cold_start(spec: ModelSpec, seed: int = 0) -> None:
    """A fresh model answers with its neutral value instead of raising."""
    model = spec.make(seed)
    x = sample_stream(seed, 1)[0]
    out = spec.predict(model, x)
    assert spec.is_neutral(out), f"{spec.name} cold start returned {out!r}"


def check_snapshot_restore(spec: ModelSpec, seed: int = 0) -> None:
    """A model restored from a snapshot makes the same predictions as the original from then on."""
    stream = sample_stream(seed, 400)
    model = spec.make(seed)
    for x in stream[:300]:
        spec.learn(model, x)
    clone = spec.restore(model.snapshot())
    for x in stream[300:]:
        same = spec.predict(clone, x) == spec.predict(model, x)
        assert same, f"{spec.name} diverged after restore"
        spec.learn(model, x)
        spec.learn(clone, x)


def check_deterministic(spec: ModelSpec, seed: int = 0) -> None:
    """Two models built with the same seed and fed the same stream agree exactly."""
    a, b = spec.make(seed), spec.make(seed)
    outputs = []
    for x in sample_stream(seed, 300):
        pa, pb = spec.predict(a, x), spec.predict(b, x)
        assert pa == pb, f"{spec.name} is not deterministic: {pa!r} != {pb!r}"
        outputs.append(pa)
        spec.learn(a, x)
        spec.learn(b, x)
    assert any(not spec.is_neutral(o) for o in outputs), f"{spec.name} never left cold start"


CHECKS: tuple[Callable[[ModelSpec, int], None], ...] = (
    check_no_input_mutation,
    check_cold_start,
    check_snapshot_restore,
    check_deterministic,
)


def yield_checks(spec: ModelSpec) -> Iterator[Callable[[ModelSpec, int], None]]:
    """Every check that applies to a model (all of them, today)."""
    yield from CHECKS
