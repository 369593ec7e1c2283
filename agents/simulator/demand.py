"""Demand traces for the simulator: synthetic diurnal load with bursts, or a NAB-style CSV."""

from __future__ import annotations

import csv
import math
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from schemas.errors import RejectedError

__all__ = ["close_gaps", "load_csv_trace", "read_csv_rows", "resample", "scale_trace",
           "synthetic_trace"]


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


def _parse_time(text: str, file: Path) -> float:
    try:
        stamp = datetime.fromisoformat(text.strip())
    except (AttributeError, ValueError) as exc:
        raise RejectedError(f"{file}: bad timestamp {text!r} ({exc})") from exc
    return (stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC)).timestamp()


def read_csv_rows(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """(epoch seconds, values) of a CSV in NAB format (`timestamp,value`), sorted by time; rows
    sharing a timestamp are averaged."""
    file = Path(path)
    if not file.is_file():
        raise RejectedError(f"trace file {file} does not exist (give 'synthetic' or a CSV path)")
    times: list[float] = []
    values: list[float] = []
    with file.open(newline="") as handle:
        for row in csv.DictReader(handle):
            try:
                value, stamp = float(row["value"]), row["timestamp"]
            except (KeyError, TypeError, ValueError) as exc:
                raise RejectedError(f"{file}: expected columns timestamp,value ({exc})") from exc
            times.append(_parse_time(stamp, file))
            values.append(value)
    if len(values) < 10:
        raise RejectedError(f"{file}: a trace needs at least 10 rows, found {len(values)}")
    t, inverse = np.unique(np.asarray(times), return_inverse=True)
    sums = np.bincount(inverse, weights=np.nan_to_num(np.asarray(values), nan=0.0))
    return t, sums / np.bincount(inverse)


def close_gaps(times: np.ndarray, max_gap_factor: float = 3.0) -> np.ndarray:
    """Times with every gap longer than `max_gap_factor` × the median row interval cut out: the
    row after a gap follows one median interval after the row before it (nothing is invented
    for the hours nobody measured, and the clock of the world never jumps)."""
    steps = np.diff(times)
    median = float(np.median(steps))
    return np.concatenate([[0.0], np.cumsum(np.where(steps > max_gap_factor * median, median,
                                                     steps))]) + times[0]


def resample(times: np.ndarray, values: np.ndarray, interval_seconds: float) -> np.ndarray:
    """Values at every `interval_seconds` from the first row to the last (linear in between):
    one value per world tick, however far apart the rows are."""
    ticks = int((times[-1] - times[0]) // interval_seconds) + 1
    return np.interp(times[0] + interval_seconds * np.arange(ticks), times, values)


def load_csv_trace(path: str | Path, interval_seconds: float = 60.0,
                   max_gap_factor: float = 3.0) -> np.ndarray:
    """A NAB-format CSV as demand per world tick: sorted, gaps closed, resampled to the tick."""
    times, values = read_csv_rows(path)
    return resample(close_gaps(times, max_gap_factor), values, interval_seconds)


def scale_trace(values: np.ndarray, peak_rps: float, quantile: float = 0.99) -> np.ndarray:
    """Scale a trace so its `quantile` maps to `peak_rps`; rare spikes above it stay (capped 2×)."""
    clean = np.nan_to_num(np.asarray(values, dtype=np.float64), nan=0.0).clip(min=0.0)
    reference = float(np.quantile(clean, quantile)) or float(clean.max()) or 1.0
    return np.minimum(clean / reference, 2.0) * peak_rps
