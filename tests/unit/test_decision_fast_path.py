"""The decision path's per-event shortcuts give bit for bit what the straightforward forms give."""

from __future__ import annotations

import math
import pickle
import random
import struct
from collections import deque
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from agents.decision import DecisionEngine
from models.dqn.explain import _best_two, _float32, round_to, rounded
from models.dqn.features import ServiceWindow, StateBuilder
from models.dqn.policy import QPolicy, allowed_confidence, init_weights
from schemas import Decision, MetricSample, Outcome, action_id_for

T0 = datetime(2026, 1, 5, tzinfo=UTC)


def _bits(values: list[float]) -> list[bytes]:
    return [struct.pack("d", v) for v in values]  # -0.0 and 0.0 differ here


def _awkward_floats() -> list[float]:
    rng = random.Random(1)
    values = [v * s for v in np.random.default_rng(2).standard_normal(20_000).astype(
        np.float32).tolist() for s in (1.0, 100.0, 1e-3)]
    values += [rng.choice([-1, 1]) * 10 ** rng.uniform(-12, 12) for _ in range(20_000)]
    for k in range(-3000, 3000):  # exact ties (k/64) and values next to decimal half-way points
        values += [k / 64, (k + 0.5) / 1e5, (k + 0.5) / 1e2, (k + 0.5) / 10]
        values += [math.nextafter((k + 0.5) / 1e5, 1), math.nextafter((k + 0.5) / 1e5, -1)]
    return values + [0.0, -0.0, -1e-7, 1e300, -1e300, math.inf, -math.inf, math.nan, 5e-324,
                     4503599627370495.5, 2.0 ** 60]


@pytest.mark.parametrize("ndigits", [1, 2, 4, 5])
def test_rounding_is_builtin_round(ndigits: int) -> None:
    values = _awkward_floats()
    expected = _bits([round(v, ndigits) for v in values])
    assert _bits([round_to(v, ndigits) for v in values]) == expected
    finite = [v for v in values if math.isfinite(v)]
    assert _bits(rounded(finite, ndigits)) == _bits([round(v, ndigits) for v in finite])
    assert round_to(3, ndigits) == 3 and isinstance(round_to(3, ndigits), int)  # as round(3, n)


def test_confidence_on_python_floats_is_numpys_softmax_share() -> None:
    rng = np.random.default_rng(5)
    for _ in range(5000):
        q = (rng.standard_normal(8) * rng.choice([0.001, 0.1, 10.0])).astype(np.float32)
        mask = rng.random(8) < rng.choice([0.3, 0.7, 1.0])  # every count of allowed, 8 included
        allowed = q[mask].astype(np.float64)  # the numpy form it replaces
        expected = 1.0 if allowed.size <= 1 else float(
            1.0 / np.exp((allowed - allowed.max()) / 0.02).sum())
        assert allowed_confidence(q.tolist(), mask.tolist(), 0.02) == expected
    q = np.array([0.1, np.nan, 0.2, 0, 0, 0, 0, 0], dtype=np.float32)
    assert math.isnan(allowed_confidence(q.tolist(), [True] * 8, 0.02))


def _numpy_best_two(q: list[float], allowed: list[bool]) -> tuple[int, int | None]:
    order = np.argsort(-np.array(q, dtype=np.float32)).tolist()
    ranked = [i for i in order if allowed[i]]
    return ranked[0], ranked[1] if len(ranked) > 1 else None


def test_best_two_ranks_as_numpys_argsort() -> None:
    rng = np.random.default_rng(7)
    for _ in range(5000):
        q = rng.standard_normal(8).astype(np.float32)
        q[rng.random(8) < 0.2] = q[0]  # ties
        mask = rng.random(8) < 0.6
        mask[rng.integers(8)] = True
        assert _best_two(q.tolist(), mask.tolist()) == _numpy_best_two(q.tolist(),
                                                                       mask.tolist())
    odd = [0.1, math.nan, 0.2, 0.0, -0.0, 0.3, math.inf, -math.inf]
    for allowed in ([True] * 8, [True, True, False, False, False, True, False, False],
                    [False, False, False, True, True, False, False, False]):
        assert _best_two(odd, allowed) == _numpy_best_two(odd, allowed)


def test_the_trend_in_the_text_is_the_float32_product() -> None:
    x = np.random.default_rng(3).uniform(-1, 1, 50_000).astype(np.float32)
    for v in [*x.tolist(), 0.0, -0.0, 0.005, -0.015]:
        assert f"{_float32(100 * v):+.0f}" == f"{100 * np.float32(v):+.0f}"


def test_one_state_forward_pass_is_the_matmul_forward_pass() -> None:
    policy = QPolicy(init_weights(4), "t")
    states = np.random.default_rng(0).uniform(-1, 3, (3000, 9)).astype(np.float32)

    def reference(x: np.ndarray) -> np.ndarray:  # the code before: `@` per layer
        for w, b in policy.layers[:-1]:
            x = np.maximum(x @ w + b, 0.0)
        w, b = policy.layers[-1]
        return x @ w + b

    for state in states:
        before = state.copy()
        assert np.array_equal(policy.q_values(state), reference(state))
        assert np.array_equal(state, before)  # the input is never modified
    assert np.array_equal(policy.q_values(states), reference(states))


def _sample(i: int, rate: float | None, **fields: object) -> MetricSample:
    base: dict[str, object] = {
        "resource_id": "svc", "resource_type": "service", "event_id": f"s-{i}",
        "event_time": T0 + timedelta(minutes=i), "cpu_usage": 60.0, "request_rate": rate,
        "active_vms": 3, "network_latency_ms": 120.0, "cost_per_hour": 0.3}
    base.update(fields)
    return MetricSample(**base)  # type: ignore[arg-type]


def _rates(builder: StateBuilder) -> list[float]:
    return [s.request_rate for s in builder.windows["svc"].samples if s.request_rate is not None]


def test_the_window_keeps_its_rates_in_step_and_a_snapshot_leaves_them_out() -> None:
    rng = random.Random(4)
    builder = StateBuilder()
    for i in range(200):  # past the window, with samples that report no rate
        builder.learn_one(_sample(i, None if i % 7 == 3 else rng.uniform(50, 900)))
        window = builder.windows["svc"]
        assert window.rates == _rates(builder)
    state = builder.state("svc", T0)
    assert state is not None
    blob = pickle.dumps(window)
    assert "rates" not in pickle.loads(blob).__getstate__()  # the format of before
    restored = StateBuilder()
    restored.windows["svc"] = pickle.loads(blob)
    assert restored.windows["svc"].rates == window.rates
    assert np.array_equal(restored.state("svc", T0), state)  # type: ignore[arg-type]
    assert ServiceWindow(deque([_sample(0, 5.0), _sample(1, None)])).rates == [5.0]


def _full_surprise(rates: list[float]) -> float:  # the formula without the quiet-case exit
    history = rates[:-1]
    mean = sum(history) / len(history)
    std = math.sqrt(sum([(r - mean) ** 2 for r in history]) / len(history))
    z = abs(rates[-1] - mean) / (std + 0.05 * mean + 1e-9)
    return min(1.0, max(0.0, (z - 1.0) / 4.0))


def test_the_surprise_of_a_quiet_window_is_the_full_formulas() -> None:
    rng = random.Random(6)
    builder = StateBuilder()
    for _ in range(20_000):
        base = rng.choice([0.0, 1e-12, 1.0, 300.0, 1e6])
        rates = [base * rng.uniform(0.9, 1.1) for _ in range(rng.randint(4, 30))]
        rates[-1] = rng.choice([rates[-1], base * 1.05, base * 0.95, sum(rates[:-1]) / (
            len(rates) - 1) * 1.05])
        assert builder._surprise(rates) == _full_surprise(rates)


def _hot(i: int) -> MetricSample:
    return _sample(i, 900.0, cpu_usage=96.0, network_latency_ms=450.0, error_rate=0.05)


def test_an_open_decision_derives_its_action_id_only_when_read() -> None:
    engine = DecisionEngine()
    decisions = []
    for i in range(6):
        engine.observe(_hot(i))
        decisions.append(engine.decide("svc", _hot(i).event_time))
    decision = next(d for d in reversed(decisions) if isinstance(d, Decision))
    pending = engine.pending["svc"]
    assert pending.action_id is None and pending.decided is not None  # deferred
    state = pickle.loads(engine.snapshot("svc"))[3].__dict__  # type: ignore[arg-type]
    assert "decided" not in state  # a snapshot holds the fields of before, settled
    assert state["action_id"] == action_id_for(decision.event_id)
    assert state["before"] == {"active_vms": 3.0, "cpu_usage": 96.0,
                               "network_latency_ms": 450.0, "cost_per_hour": 0.3}
    other = DecisionEngine()
    other.restore("svc", engine.snapshot("svc"))  # type: ignore[arg-type]
    outcome = Outcome(action_id=action_id_for(decision.event_id), resource_id="svc",
                      status="succeeded", event_time=decision.event_time)
    assert other.record_outcome(outcome) is None and other.pending["svc"].status == "succeeded"
    assert engine.record_outcome(outcome) is None and engine.pending["svc"].status == "succeeded"


class _Counting:
    version: str | None = "counting"

    def __init__(self) -> None:
        self.policy, self.calls = QPolicy(init_weights(0)), 0

    def q_values(self, state: np.ndarray) -> np.ndarray:
        self.calls += 1
        return self.policy.q_values(state)


def test_no_forward_pass_when_no_action_is_the_only_allowed_action() -> None:
    model = _Counting()
    engine = DecisionEngine(policy=model)
    engine.guard.history["svc"] = deque((T0 + timedelta(seconds=i), "migrate_vm")
                                        for i in range(6))  # the rate limit is reached
    engine.observe(_sample(1, 100.0))
    assert engine.decide("svc", T0 + timedelta(minutes=1)) is None
    assert model.calls == 0 and engine.pending["svc"].action == 0
    engine.guard.history.clear()
    engine.decide("svc", T0 + timedelta(minutes=1))
    assert model.calls == 1


def test_a_snapshot_keeps_the_newest_sample_whole_and_older_ones_as_rates_only() -> None:
    rng = random.Random(8)
    samples = [_sample(i, None if i % 5 == 2 else rng.uniform(50, 900),
                       cpu_usage=rng.uniform(20, 99), network_latency_ms=rng.uniform(50, 500),
                       error_rate=rng.uniform(0, 0.05)) for i in range(120)]
    engine = DecisionEngine()
    for s in samples[:70]:
        engine.observe(s)
        engine.decide("svc", s.event_time)
    blob = engine.snapshot("svc")
    assert blob is not None and len(blob) < 4_000  # ~10 KB with every sample whole
    window = pickle.loads(blob)[1]
    assert window.samples[-1] == samples[69]  # the newest, whole
    assert [s.request_rate for s in window.samples] == [
        s.request_rate for s in samples[70 - len(window.samples):70]]
    assert not any(isinstance(s, MetricSample) for s in list(window.samples)[:-1])
    restored = DecisionEngine()
    restored.restore("svc", blob)
    for s in samples[70:]:  # past a whole window: the stand-ins leave it one by one
        out = []
        for e in (engine, restored):
            e.observe(s)
            d = e.decide("svc", s.event_time)
            out.append(None if d is None else d.model_dump(exclude={"event_id", "produced_at"}))
            out.append(e.states.state("svc", s.event_time).tolist())  # type: ignore[union-attr]
        assert out[0] == out[2] and out[1] == out[3]
