"""The rivals of the autoscaling benchmark: the HPA sweep and the predictive scaler."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import numpy as np

from agents.simulator.benchmark import BenchmarkConfig
from agents.simulator.controllers import HPAController, PredictiveController
from schemas import MetricSample

START = datetime(2026, 1, 5, tzinfo=UTC)


def _sample(t: int, rate: float, vms: int, booting: int = 0) -> MetricSample:
    return MetricSample(resource_id="svc-0", event_time=START + timedelta(minutes=t),
                        request_rate=rate, active_vms=vms, cpu_usage=50.0,
                        extra={"booting_vms": float(booting)})


def test_the_hpa_is_swept_from_10_to_90_percent() -> None:
    names = [HPAController(t, 1, 20, 60.0).name for t in BenchmarkConfig().hpa_targets]
    assert names == [f"hpa-{p}" for p in range(10, 100, 10)]


def test_predictive_scaling_provisions_the_forecast_over_target_capacity() -> None:
    scaler = PredictiveController(target=0.5, quantile=0.5, capacity_rps=100.0, min_vms=1,
                                  max_vms=20, interval_seconds=60.0)
    assert scaler.name == "predictive-q50-50"
    wanted = [scaler.desired(_sample(t, 400.0, 4)) for t in range(30)]
    assert wanted[0] == 4  # cold start: the fleet is held
    assert wanted[-1] == math.ceil(400.0 / (100.0 * 0.5))  # steady 400 rps at 50 % → 8 VMs


def test_a_higher_quantile_provisions_more_for_noisy_demand() -> None:
    def last(quantile: float) -> int:
        scaler = PredictiveController(0.7, quantile, 100.0, 1, 20, 60.0)
        noise = np.random.default_rng(3).normal(0.0, 100.0, 300)
        out = 0
        for t in range(300):  # fleet of 1: every recommendation is a scale-up, none clamped
            out = scaler.desired(_sample(t, 500.0 + float(noise[t]), 1))
        return out

    assert last(0.9) > last(0.5)


def test_predictive_scale_down_waits_for_the_stabilisation_window() -> None:
    scaler = PredictiveController(0.5, 0.5, 100.0, 1, 20, 60.0, stabilisation_seconds=300.0)
    for t in range(30):
        scaler.desired(_sample(t, 800.0, 16))
    first_low = [scaler.desired(_sample(30 + t, 100.0, 16)) for t in range(3)]
    assert all(w == 16 for w in first_low)  # the window still remembers the high demand
