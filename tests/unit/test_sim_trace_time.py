"""The world reads traces by their timestamps and its static-at-peak rival meets the SLO."""

from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from agents.simulator import SimConfig, World
from agents.simulator.benchmark import BenchmarkConfig, episode_ticks
from agents.simulator.demand import close_gaps, load_csv_trace, read_csv_rows
from agents.simulator.evaluate import peak_vms
from models.dqn.reward import RewardConfig
from tests.nab_data import FULL_NAB, needs_full_nab


def _csv(path: Path, rows: list[tuple[str, float]]) -> Path:
    path.write_text("timestamp,value\n" + "".join(f"{t},{v}\n" for t, v in rows))
    return path


def test_a_row_spans_as_many_ticks_as_its_timestamps_say(tmp_path: Path) -> None:
    rows = [(f"2020-01-01 {h:02d}:{m:02d}:00", float(i))
            for i, (h, m) in enumerate((i // 12, 5 * (i % 12)) for i in range(12))]
    values = load_csv_trace(_csv(tmp_path / "t.csv", rows), interval_seconds=60.0)
    assert len(values) == 11 * 5 + 1  # 5-minute rows, 60-second ticks
    assert values[:6] == pytest.approx([0.0, 0.2, 0.4, 0.6, 0.8, 1.0])


def test_long_gaps_are_cut_out_and_short_ones_interpolated(tmp_path: Path) -> None:
    hours = [0, 1, 2, 3, 4, 20, 21, 22, 23, 25, 26]  # a 16-hour hole and a 2-hour one
    start = datetime(2020, 1, 1)
    rows = [((start + timedelta(hours=h)).isoformat(" "), float(h)) for h in hours]
    times, values = read_csv_rows(_csv(tmp_path / "g.csv", rows))
    closed = close_gaps(times)
    assert np.diff(closed).tolist() == [3600.0] * 4 + [3600.0] + [3600.0] * 3 + [7200.0, 3600.0]
    per_tick = load_csv_trace(tmp_path / "g.csv", interval_seconds=3600.0)
    assert per_tick.tolist() == [0, 1, 2, 3, 4, 20, 21, 22, 23, 24, 25, 26]


def test_unsorted_and_repeated_timestamps_are_ordered_and_averaged(tmp_path: Path) -> None:
    rows = [("2020-01-01 00:10:00", 4.0), ("2020-01-01 00:00:00", 1.0),
            ("2020-01-01 00:05:00", 2.0), ("2020-01-01 00:05:00", 4.0)]
    rows += [(f"2020-01-01 00:{15 + 5 * i:02d}:00", 5.0) for i in range(8)]
    times, values = read_csv_rows(_csv(tmp_path / "u.csv", rows))
    assert values[:3].tolist() == [1.0, 3.0, 4.0] and np.all(np.diff(times) == 300)


def test_the_episode_covers_the_whole_resampled_trace(tmp_path: Path) -> None:
    rows = [(f"2020-01-01 {i // 12:02d}:{5 * (i % 12):02d}:00", 1.0 + i % 3) for i in range(24)]
    sim = SimConfig.autoscaling(trace=str(_csv(tmp_path / "e.csv", rows)))
    assert episode_ticks(BenchmarkConfig(sim=sim)) == 23 * 5 + 1


def _static_violation_pct(trace: Path) -> float:
    sim = SimConfig.autoscaling(seed=7, trace=str(trace))
    ticks = episode_ticks(BenchmarkConfig(sim=sim))
    slo = RewardConfig()
    world = World(sim.model_copy(update={"initial_vms": peak_vms(sim, slo.slo_latency_ms,
                                                                  ticks)}))
    bad = 0
    for _ in range(ticks):
        m = world.serve()["svc-0"]
        bad += m.latency_ms > slo.slo_latency_ms or m.error_rate > slo.slo_error_rate
    return 100.0 * bad / ticks


SHARED = sorted((FULL_NAB / "data").glob("*/*.csv")) if FULL_NAB else []


@pytest.fixture(scope="module")
def static_violations() -> dict[Path, float]:
    # Each trace is an independent simulation of 20k-100k ticks: run them on every core (spawned,
    # so no child inherits the test process's threads), ~2x faster on the CI machine's 2 cores.
    spawn = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=os.cpu_count() or 1, mp_context=spawn) as pool:
        return dict(zip(SHARED, pool.map(_static_violation_pct, SHARED), strict=True))


@needs_full_nab
@pytest.mark.slow
@pytest.mark.parametrize("trace", SHARED, ids=[p.stem for p in SHARED])
def test_static_at_peak_meets_the_slo_on_every_shared_trace(
    trace: Path, static_violations: dict[Path, float]
) -> None:
    # Issue 16: violations come from overload, failures and actuation delay, not from noise no
    # capacity can fix; a fleet provisioned for the peak stays within half a percent.
    assert static_violations[trace] <= 0.5
