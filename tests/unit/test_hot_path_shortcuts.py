"""The decision path's shortcuts give what the validating or numpy forms give."""

from __future__ import annotations

import os
import uuid
from datetime import UTC, datetime, timedelta, timezone

import numpy as np
import pytest

from agents.decision import DecisionEngine
from models.dqn.policy import confidence, init_weights, masked_argmax
from schemas import Decision, Insight, MetricSample
from schemas.envelope import new_event_id

SAMPLE = MetricSample(resource_id="svc-1", resource_type="service", event_id="s-1",
                      event_time=datetime(2026, 1, 1, tzinfo=UTC), cpu_usage=50.0)
FIELDS = dict(source="novacron.decision", event_time=SAMPLE.event_time, resource_id="svc-1",
              decision_type="scale_up", origin="dqn", confidence=0.9312,
              reasoning="scale_up by 1 VM(s) on svc-1", params={"delta": 1}, mode="live",
              expected_impact={"active_vms": 1.0, "cpu_usage": -10.25},
              state={"cpu": 0.5, "memory": 0.25}, requires_approval=False,
              model_version="v0003")


def _same(built: Decision | Insight, validated: Decision | Insight) -> None:
    fixed = built.model_copy(update={"event_id": validated.event_id})
    assert fixed == validated
    assert list(built.__dict__) == list(validated.__dict__)  # field order: same JSON
    assert built.model_fields_set == validated.model_fields_set
    assert fixed.model_dump_json() == validated.model_dump_json()


def test_built_equals_the_validated_event() -> None:
    _same(Decision.built(SAMPLE, **FIELDS), Decision.caused_by(SAMPLE, **FIELDS))
    kw = dict(resource_id="svc-1", kind="forecast", metric="cpu_usage", value=1.5,
              event_time=SAMPLE.event_time)
    _same(Insight.built(SAMPLE, **kw), Insight.caused_by(SAMPLE, **kw))


def test_built_sets_time_chain_and_fresh_defaults_as_validation_does() -> None:
    local = datetime(2026, 1, 1, 1, 0, 0, 123456, tzinfo=timezone(timedelta(hours=1)))
    event = Decision.built(SAMPLE, resource_id="svc-1", decision_type="scale_up",
                           event_time=local)
    assert event.event_time == datetime(2026, 1, 1, 0, 0, 0, 123000, tzinfo=UTC)
    assert event.event_time.tzinfo is UTC
    assert (event.correlation_id, event.causation_id) == (SAMPLE.correlation_id, "s-1")
    other = Decision.built(SAMPLE, resource_id="svc-1", decision_type="scale_up")
    assert other.event_id != event.event_id
    assert other.params is not event.params  # a default dict per event, as validation makes
    first = Decision.built(SAMPLE, resource_id="a", decision_type="x", correlation_id="")
    assert first.correlation_id == first.event_id  # a chain starts here


def test_built_refuses_unknown_or_missing_fields() -> None:
    with pytest.raises(TypeError):
        Decision.built(SAMPLE, resource_id="svc-1", decision_type="x", bogus=1)
    with pytest.raises(TypeError):
        Decision.built(SAMPLE, resource_id="svc-1")  # decision_type is required


def test_new_event_ids_are_uuid4_strings() -> None:
    ids = {new_event_id() for _ in range(2000)}
    assert len(ids) == 2000
    for text in list(ids)[:200]:
        parsed = uuid.UUID(text)
        assert (parsed.version, parsed.variant, str(parsed)) == (4, uuid.RFC_4122, text)


def test_masked_argmax_is_numpys_masked_argmax() -> None:
    rng = np.random.default_rng(3)
    cases = [(rng.standard_normal(8).astype(np.float32), rng.random(8) < 0.6)
             for _ in range(3000)]
    q = np.array([1.0, 3.0, 3.0, -np.inf, np.nan, 2.0, np.nan, 0.0], dtype=np.float32)
    cases += [(q, np.ones(8, dtype=bool)), (q, np.zeros(8, dtype=bool)),
              (q, np.array([0, 0, 0, 1, 0, 0, 0, 0], dtype=bool)),
              (q, np.array([1, 0, 0, 0, 0, 1, 1, 0], dtype=bool)),
              (q, np.array([0, 1, 1, 0, 0, 0, 0, 0], dtype=bool))]
    for values, mask in cases:
        assert masked_argmax(values, mask) == int(np.argmax(np.where(mask, values, -np.inf)))


def test_confidence_is_the_softmax_share_of_the_best_allowed_action() -> None:
    rng = np.random.default_rng(5)
    for _ in range(3000):
        q = (rng.standard_normal(8) * rng.choice([0.001, 0.1, 10.0])).astype(np.float32)
        mask = rng.random(8) < 0.7
        allowed = q[mask].astype(np.float64)
        p = np.exp((allowed - allowed.max()) / 0.02)
        expected = 1.0 if allowed.size <= 1 else float(p.max() / p.sum())
        assert confidence(q, mask, 0.02) == expected
    q = np.array([0.1, np.nan, 0.2, 0, 0, 0, 0, 0], dtype=np.float32)
    assert np.isnan(confidence(q, np.ones(8, dtype=bool), 0.02))


def test_a_non_finite_decision_is_still_refused() -> None:
    engine = DecisionEngine()
    weights = init_weights(0)
    weights["b3"][1] = np.nan  # scale_up's Q is NaN: it wins, its confidence is NaN
    engine.policy.layers[-1] = (engine.policy.layers[-1][0], weights["b3"])
    sample = SAMPLE.model_copy(update={"active_vms": 3, "request_rate": 100.0})
    engine.observe(sample)
    engine._valid_version = engine.policy.version  # as after a first valid decision
    with pytest.raises(ValueError, match="finite"):
        engine.decide("svc-1", sample.event_time)


def test_a_forked_child_does_not_repeat_its_parents_ids() -> None:
    new_event_id()  # the parent holds unread random ids now
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: send its next ids and leave
        os.write(write, ",".join(new_event_id() for _ in range(8)).encode())
        os._exit(0)
    os.close(write)
    child = set(os.read(read, 4096).decode().split(","))
    os.waitpid(pid, 0)
    os.close(read)
    assert len(child) == 8
    assert not child & {new_event_id() for _ in range(8)}
