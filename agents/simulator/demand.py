"""Demand traces for the simulator: synthetic diurnal load with bursts, or a NAB-style CSV."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np

from schemas.errors import RejectedError

__all__ = ["load_csv_trace", "scale_trace", "synthetic_trace"]


def synthetic_trace(rng: np.random.Generator, ticks: int, ticks_per_day: int = 1440) -> np.ndarray:
    """Diurnal demand in [0, ~1]: a daily sine, a weekly dip, noise and random bursts."""
    t = np.arange(ticks, dtype=np.float64)
    day = 0.55 + 0.35 * np.sin(2 * math.pi * (t / ticks_per_day - 0.3))
    week = 1.0 - 0.15 * ((t // ticks_per_day) % 7 >= 5)
    noise = rng.normal(1.0, 0.04, ticks)
    bursts = np.ones(ticks)
    # Bursts: a few per day, ramping up quickly and decaying over ~30 ticks (a flash crowd).
    for begin in np.flatnonzero(rng.random(ticks) < 3.0 / ticks_per_day):
        start = int(begin)
        height = float(rng.uniform(0.3, 1.0))
        length = min(int(rng.integers(10, 60)), ticks - start)
        bursts[start : start + length] += height * np.exp(-np.arange(length) / (length / 3))
    return np.clip(day * week * noise * bursts, 0.02, None)


def load_csv_trace(path: str | Path) -> np.ndarray:
    """Values of a CSV in NAB format (`timestamp,value`), one per tick."""
    file = Path(path)
    if not file.is_file():
        raise RejectedError(f"trace file {file} does not exist (give 'synthetic' or a CSV path)")
    values: list[float] = []
    with file.open(newline="") as handle:
        for row in csv.DictReader(handle):
            try:
                values.append(float(row["value"]))
            except (KeyError, TypeError, ValueError) as exc:
                raise RejectedError(f"{file}: expected columns timestamp,value ({exc})") from exc
    if len(values) < 10:
        raise RejectedError(f"{file}: a trace needs at least 10 rows, found {len(values)}")
    return np.asarray(values, dtype=np.float64)


def scale_trace(values: np.ndarray, peak_rps: float, quantile: float = 0.99) -> np.ndarray:
    """Scale a trace so its `quantile` maps to `peak_rps`; rare spikes above it stay (capped 2×)."""
    clean = np.nan_to_num(np.asarray(values, dtype=np.float64), nan=0.0).clip(min=0.0)
    reference = float(np.quantile(clean, quantile)) or float(clean.max()) or 1.0
    return np.minimum(clean / reference, 2.0) * peak_rps
