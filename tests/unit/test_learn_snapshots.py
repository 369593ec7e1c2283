"""Checkpoints written before the learn role's per-sample optimisations still restore exactly."""

from __future__ import annotations

import pickle  # noqa: S403 - a fixture this repository wrote
import random
from pathlib import Path
from typing import Any

from river import stats

from agents.optimizer import Optimizer
from models.forecast import Forecaster, _ewm, _ewm_value
from models.registry import sample_stream
from schemas import MetricSample

# Written by commit c9b8a9e from sample_stream(5, 400): a forecaster (horizon 3) and an optimizer
# resource after 300 samples, with what each produced over the last 100 samples.
FIXTURE = Path(__file__).parents[1] / "fixtures" / "learn_snapshots_c9b8a9e.pkl"
_VOLATILE = {"event_id", "event_time", "correlation_id", "causation_id",
             "produced_at"}  # stamped by the host as it sends, not by the model


def _old() -> dict[str, Any]:
    return dict(pickle.loads(FIXTURE.read_bytes()))  # noqa: S301 - our own fixture


def test_ewm_is_rivers_ewmean_bit_for_bit() -> None:
    rng = random.Random(7)
    for alpha in (0.5, 0.1, 0.05, 0.005):
        river_mean, mean = stats.EWMean(alpha), None
        assert river_mean.get() == 0.0  # before the first update (the forecaster reads 0.0)
        for _ in range(5000):
            x = rng.choice([0.0, -3.0, rng.gauss(0, 10), rng.random() * 1e6])
            river_mean.update(x)
            mean = _ewm(mean, x, alpha)
            assert mean == river_mean.get()
        assert _ewm_value(river_mean) == mean
    assert _ewm_value(stats.EWMean(0.5)) is None


def test_an_old_forecaster_snapshot_forecasts_as_before() -> None:
    old = _old()
    model = Forecaster.restore(old["forecaster"])
    stream = sample_stream(5, 400)
    for x, expected in zip(stream[300:], old["predictions"], strict=True):
        p = model.predict_one()
        assert (None if p is None else [p.value, p.lower, p.upper, p.weights]) == expected
        model.learn_one(x["cpu_usage"], x["t"])


def test_an_old_optimizer_checkpoint_emits_as_before() -> None:
    old = _old()
    opt = Optimizer()
    opt.restore("vm-1", old["optimizer"])
    stream = sample_stream(5, 400)
    for i, (x, expected) in enumerate(zip(stream[300:], old["events"], strict=True)):
        sample = MetricSample(resource_id="vm-1", event_id=f"e{300 + i}", event_time=x["t"],
                              cpu_usage=x["cpu_usage"], memory_usage=x["memory_usage"],
                              active_vms=3)
        events = [e.model_dump(mode="json", exclude=_VOLATILE) for e in opt.process(sample)]
        assert events == expected
