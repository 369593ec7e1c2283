"""Torch-free Q-network inference: a numpy forward pass from exported weights, plus confidence."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Protocol

import numpy as np

from schemas.errors import NonRetryableError

__all__ = ["LAYERS", "Explorer", "QFunction", "QPolicy", "allowed_confidence", "best_allowed",
           "confidence", "init_weights", "masked_argmax"]

LAYERS: tuple[int, ...] = (9, 128, 128, 64, 8)
"""Default network shape: 9 features → 128 → 128 → 64 → 8 actions."""


class QFunction(Protocol):
    """Anything that gives Q-values for a state (QPolicy, or a torch adapter in training)."""

    version: str | None

    def q_values(self, state: np.ndarray) -> np.ndarray: ...


class Explorer(Protocol):
    """Training hook: may override the greedy choice with an exploratory allowed action."""

    def pick(self, mask: np.ndarray) -> int | None: ...


def init_weights(seed: int, layers: tuple[int, ...] = LAYERS) -> dict[str, np.ndarray]:
    """Random (He-initialised) weights, for an engine that has no trained model yet."""
    rng = np.random.default_rng(seed)
    weights: dict[str, np.ndarray] = {}
    for i, (n_in, n_out) in enumerate(zip(layers[:-1], layers[1:], strict=True)):
        weights[f"w{i}"] = (rng.standard_normal((n_out, n_in)) * np.sqrt(2.0 / n_in)).astype(
            np.float32)
        weights[f"b{i}"] = np.zeros(n_out, dtype=np.float32)
    return weights


class QPolicy:
    """Q-values of a state with ReLU hidden layers (the same maths as the torch network)."""

    def __init__(self, weights: dict[str, np.ndarray], version: str | None = None) -> None:
        count = len([k for k in weights if k.startswith("w")])
        if count == 0:
            raise NonRetryableError("model weights hold no layers (expected w0, b0, …)")
        self.layers = [(np.ascontiguousarray(weights[f"w{i}"].T, dtype=np.float32),
                        np.asarray(weights[f"b{i}"], dtype=np.float32)) for i in range(count)]
        self.version = version
        self.budget_reference_pct: float | None = None
        """The SLO budget the model was trained for (from its checkpoint metadata)."""
        self.from_checkpoint = False
        """True when `budget_reference_pct` was read from a checkpoint (None there means a model
        trained before budgets): the engine then takes it as the state's reference budget."""

    @classmethod
    def load(cls, path: str | Path, version: str | None = None) -> QPolicy:
        """Weights from an .npz file written by the checkpoint store."""
        with np.load(path) as data:
            return cls({k: data[k] for k in data.files}, version)

    @property
    def n_inputs(self) -> int:
        return int(self.layers[0][0].shape[0])

    def q_values(self, state: np.ndarray) -> np.ndarray:
        """Q-value of each action for one state (or a batch of states)."""
        x = np.asarray(state, dtype=np.float32)
        # One state: np.dot, the same BLAS gemv as `@` (the same float32 results, checked in
        # tests/unit/test_decision_fast_path.py) with less dispatch per call; a batch keeps `@`.
        product = np.dot if x.ndim == 1 else np.matmul
        for w, b in self.layers[:-1]:
            x = product(x, w)  # a new array: the in-place steps below never touch `state`
            x += b
            np.maximum(x, _ZERO, out=x)
        w, b = self.layers[-1]
        x = product(x, w)
        x += b
        return x


_ZERO = np.float32(0.0)
"""ReLU's floor as a float32 scalar: a Python 0.0 costs a conversion per call."""


def masked_argmax(q: np.ndarray, mask: np.ndarray) -> int:
    """Best allowed action; a masked action can never win (it gets -inf).

    `int(np.argmax(np.where(mask, q, -np.inf)))`: see `best_allowed`."""
    return best_allowed(q.tolist(), mask.tolist())


def best_allowed(values: list[float], allowed: list[bool]) -> int:
    """`masked_argmax` over Python floats (the first best wins, a NaN wins at once, index 0 when
    nothing is allowed), without numpy's per-call cost on 8 values."""
    best, index = -math.inf, 0
    for i, ok in enumerate(allowed):
        if ok:
            value = values[i]
            if value > best:
                best, index = value, i
            elif value != value:  # NaN: numpy's argmax returns the first one
                return i
    return index


def confidence(q: np.ndarray, mask: np.ndarray, temperature: float) -> float:
    """Softmax probability of the best allowed action at `temperature` (1.0 if it is the only one).

    Q-values of close actions give ~1/k; a clear winner gives ~1. The temperature is in reward
    units: a Q margin of one temperature between the best two actions gives about 0.73.
    """
    return allowed_confidence(q.tolist(), mask.tolist(), temperature)


def allowed_confidence(values: list[float], allowed: list[bool], temperature: float) -> float:
    """`confidence` over Python floats (float32 values widen exactly, as numpy's astype does).

    Only the exponential stays in numpy: its SIMD exp differs from math.exp in the last bit for
    ~5 % of arguments. A NaN Q-value makes the sum, and so the confidence, NaN as before."""
    kept = [v for v, ok in zip(values, allowed, strict=True) if ok]
    if len(kept) <= 1:
        return 1.0
    top, scale = max(kept), max(temperature, 1e-9)
    p = np.exp([(v - top) / scale for v in kept]).tolist()
    return 1.0 / _numpy_sum(p)


def _numpy_sum(p: list[float]) -> float:
    """The float64 sum numpy's `p.sum()` gives for up to 8 values: in order below 8, pairwise at
    8 (its unrolled blocks), so the same bits without the call."""
    if len(p) < 8:
        total = 0.0
        for v in p:
            total += v
        return total
    if len(p) > 8:
        return float(np.sum(p))
    return ((p[0] + p[1]) + (p[2] + p[3])) + ((p[4] + p[5]) + (p[6] + p[7]))
