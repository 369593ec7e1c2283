"""Safe online learning: the promotion rule, the shadow evaluation on recent demand, promotion as
a new checkpoint (rollback as before), rejection as an event, and training that continues from
the deployed model's weights and config."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from agents.decision import DecisionConfig, DecisionEngine
from agents.promotion import PolicyRun, RecentDemand, ShadowConfig, ShadowEvaluator, judge
from models.dqn.checkpoints import CheckpointStore
from models.dqn.features import FEATURES
from models.dqn.policy import QPolicy
from models.dqn.reward import RewardConfig
from models.slo import SLOConfig
from schemas import MetricSample, ModelPromotion
from schemas.errors import RejectedError
from streams.decision import SHIPPED_MODEL
from streams.online import OnlineLearning, trained_config
from streams.settings import OnlineTrainingConfig

SHIPPED = CheckpointStore(SHIPPED_MODEL)
LOAD = FEATURES.index("request_rate")  # demand level over provisioned capacity
T0 = datetime(2026, 12, 1, tzinfo=UTC)


def linear_q(coef: np.ndarray, bias: np.ndarray) -> dict[str, np.ndarray]:
    """Weights of the 9→128→128→64→8 ReLU network that compute Q = coef · state + bias
    (the first layer splits x into relu(x), relu(−x); the next two pass them on)."""
    n, hidden = len(FEATURES), (128, 128, 64)
    w0 = np.zeros((hidden[0], n), np.float32)
    w0[:n], w0[n:2 * n] = np.eye(n), -np.eye(n)
    w1 = np.zeros((hidden[1], hidden[0]), np.float32)
    w1[:2 * n, :2 * n] = np.eye(2 * n)
    w2 = np.zeros((hidden[2], hidden[1]), np.float32)
    w2[:2 * n, :2 * n] = np.eye(2 * n)
    w3 = np.zeros((8, hidden[2]), np.float32)
    w3[:, :n], w3[:, n:2 * n] = coef, -coef
    return {"w0": w0, "b0": np.zeros(hidden[0], np.float32), "w1": w1,
            "b1": np.zeros(hidden[1], np.float32), "w2": w2, "b2": np.zeros(hidden[2], np.float32),
            "w3": w3, "b3": bias.astype(np.float32)}


def threshold(up: float, down: float) -> dict[str, np.ndarray]:
    """Scale up above `up` load, down below `down`, else nothing (other actions never)."""
    coef, bias = np.zeros((8, len(FEATURES))), np.full(8, -10.0)
    bias[0] = 0.0
    coef[1, LOAD], bias[1] = 1.0, -up
    coef[2, LOAD], bias[2] = -1.0, down
    return linear_q(coef, bias)


def always(action: int) -> dict[str, np.ndarray]:
    """Prefers one action whenever the safety layer allows it."""
    bias = np.full(8, -10.0)
    bias[action] = 1.0
    return linear_q(np.zeros((8, len(FEATURES))), bias)


THRIFTY = threshold(0.65, 0.45)  # meets the 1 % budget on DEMAND, scales down when it can
LAVISH = always(0)  # never scales down: the overload guard adds VMs, they stay (costly, safe)
RECKLESS = always(2)  # scales down whenever allowed: violates the SLO on half the ticks


def demand(n: int = 1440, seed: int = 3) -> list[MetricSample]:
    """A day of one service's samples: a diurnal request rate with noise."""
    rng = np.random.default_rng(seed)
    rate = 400 + 300 * np.sin(np.pi * np.arange(n) / n * 2) ** 2 + rng.normal(0, 20, n)
    return [MetricSample(resource_id="svc-0", resource_type="service",
                         event_time=T0 + timedelta(minutes=i), request_rate=float(r),
                         cpu_usage=50.0, network_latency_ms=100.0, active_vms=4)
            for i, r in enumerate(rate)]


def history(samples: list[MetricSample]) -> dict[str, list[tuple[float, float]]]:
    log = RecentDemand(10_000)
    for s in samples:
        log.add(s)
    return log.snapshot()


EVALUATOR = ShadowEvaluator(ShadowConfig(), SLOConfig(budget_pct=1.0), DecisionConfig())


# ------------------------------------------------------------------ the rule

def run(violation: float, cost: float) -> PolicyRun:
    return PolicyRun(worst_violation_pct=violation, cost=cost, vm_hours=cost * 10, ticks=100)


@pytest.mark.parametrize(("candidate", "deployed", "promote", "words"), [
    (run(0.5, 10.0), run(0.8, 12.0), True, "meets the SLO budget"),
    (run(1.0, 12.0), run(0.2, 12.0), True, "meets the SLO budget"),  # at the limits: promoted
    (run(1.01, 5.0), run(0.2, 12.0), False, "misses the SLO budget"),  # cheaper, but violates
    (run(0.1, 12.5), run(0.9, 12.0), False, "costs more"),  # safer, but dearer
    (run(3.0, 5.0), run(9.0, 12.0), False, "misses the SLO budget"),  # better than a bad one
])
def test_promote_only_within_the_budget_at_no_higher_cost(candidate, deployed, promote, words
                                                          ) -> None:  # type: ignore[no-untyped-def]
    ok, reason = judge(candidate, deployed, budget_pct=1.0)
    assert ok is promote and words in reason


# ------------------------------------------------------------------ the shadow evaluation

def test_shadow_evaluation_rejects_worse_candidates_and_promotes_a_better_one() -> None:
    recent = history(demand())
    lavish, thrifty = QPolicy(LAVISH, "v0001"), QPolicy(THRIFTY, "candidate")
    better = EVALUATOR.evaluate(lavish, thrifty, recent)
    assert better.promote, better.reason
    assert better.candidate and better.deployed and better.services == ["svc-0"]
    assert better.candidate.worst_violation_pct <= 1.0
    assert better.candidate.cost < better.deployed.cost
    assert better.window_start == T0 and better.window_end == T0 + timedelta(minutes=1439)
    # always scaling down: cheaper still, but far outside the budget
    worse = EVALUATOR.evaluate(thrifty, QPolicy(RECKLESS, "candidate"), recent)
    assert not worse.promote and "misses the SLO budget" in worse.reason
    assert worse.candidate and worse.candidate.worst_violation_pct > 10
    # within the budget but dearer than what runs: not promoted either
    dearer = EVALUATOR.evaluate(thrifty, lavish, recent)
    assert not dearer.promote and "costs more" in dearer.reason


class Broken:
    version = "broken"

    def q_values(self, state: np.ndarray) -> np.ndarray:
        raise FloatingPointError("NaN in layer 2")


def test_an_evaluation_error_or_too_little_history_rejects_with_the_reason() -> None:
    recent = history(demand(300))
    failed = EVALUATOR.evaluate(QPolicy(THRIFTY, "v0001"), Broken(), recent)
    assert not failed.promote and failed.candidate is None
    assert failed.reason == "evaluation failed: FloatingPointError: NaN in layer 2"
    short = EVALUATOR.evaluate(QPolicy(THRIFTY), QPolicy(THRIFTY), history(demand(100)))
    assert not short.promote and "not enough recent history" in short.reason
    assert "(most: 100)" in short.reason


# ------------------------------------------------------------------ promotion in the learn role

def deployed_store(tmp_path) -> CheckpointStore:  # type: ignore[no-untyped-def]
    """A local checkpoint folder whose current model is LAVISH, saved with v0003's config."""
    store = CheckpointStore(tmp_path / "models")
    meta = SHIPPED.meta("v0003")
    store.save(LAVISH, {"traces": meta.traces, "config": meta.config})
    return store


def learner(store: CheckpointStore, engine: DecisionEngine) -> OnlineLearning:
    cfg = OnlineTrainingConfig(online_training=True, shadow=ShadowConfig(min_samples=240))
    return OnlineLearning(engine, store, SHIPPED, cfg, SLOConfig(budget_pct=1.0))


def test_a_worse_candidate_is_not_promoted_and_a_better_one_is(tmp_path) -> None:  # type: ignore[no-untyped-def]
    store = deployed_store(tmp_path)
    engine = DecisionEngine(DecisionConfig(), QPolicy(store.load(), "v0001"))
    online = learner(store, engine)
    for sample in demand():  # the live stream: the engine keeps the recent demand
        engine.handle(sample)

    online.candidate(RECKLESS, grad_steps=2000)
    (rejected,) = engine.tick(T0)
    assert isinstance(rejected, ModelPromotion) and rejected.status == "rejected"
    assert rejected.candidate == "v0001+2000" and rejected.deployed_version == "v0001"
    assert rejected.candidate_violation_pct is not None and rejected.candidate_violation_pct > 1
    assert rejected.budget_pct == 1.0 and "misses the SLO budget" in rejected.reason
    assert engine.policy.version == "v0001" and store.current() == "v0001"  # nothing changed

    online.candidate(THRIFTY, grad_steps=4000)
    (promoted,) = engine.tick(T0)
    assert isinstance(promoted, ModelPromotion) and promoted.status == "promoted"
    assert promoted.candidate == "v0002" and promoted.base_version == "v0001"
    assert promoted.grad_steps == 4000 and promoted.services == 1 and promoted.ticks == 1440
    assert promoted.candidate_cost is not None and promoted.deployed_cost is not None
    assert promoted.candidate_cost < promoted.deployed_cost
    assert engine.policy.version == "v0002" and store.current() == "v0002"
    saved = store.meta("v0002")
    assert saved.parent == "v0001"
    assert saved.config["train"] == SHIPPED.meta("v0003").config["train"]
    assert saved.config["online"]["evaluation"]["promote"] is True
    assert online.base == "v0002"  # the next candidate is judged against the promoted one
    assert store.rollback() == "v0001"  # `novacron model rollback --local` as before


def test_online_training_starts_from_the_deployed_weights_and_config() -> None:
    shipped = SHIPPED.load("v0003")
    engine = DecisionEngine(DecisionConfig(), QPolicy(shipped, "shipped-v0003"))
    online = learner(CheckpointStore("/nonexistent"), engine)
    meta = SHIPPED.meta("v0003")
    assert online.trainer.config == trained_config(meta)
    assert online.trainer.config.gamma == 0.95 and online.trainer.config.n_step == 3
    assert online.trainer.initial is not None
    assert all(np.array_equal(online.trainer.initial[k], shipped[k]) for k in shipped)
    # the engine's transitions carry the reward the model was trained with
    assert engine.config.reward == RewardConfig.model_validate(meta.config["decision"]["reward"])

    first: list[dict[str, np.ndarray]] = []
    done = threading.Event()
    online.trainer.publish = lambda weights, steps: (first.append(weights), done.set())
    online.trainer.publish_every = 1
    rng = np.random.default_rng(0)
    online.trainer.submit([(rng.random(9).astype(np.float32), 0, -0.5,
                            rng.random(9).astype(np.float32), False, np.ones(8, dtype=bool))
                           for _ in range(online.trainer.config.warmup)])
    online.start()
    try:
        assert done.wait(120), "the trainer published nothing"
    finally:
        online.stop()
    # a few Adam steps at lr 1e-3 from v0003: every weight within 0.05 of it (random
    # initial weights would be off by ~0.1–1)
    drift = max(float(np.abs(first[0][k] - shipped[k]).max()) for k in shipped)
    assert drift < 0.05


def test_a_deploy_rebases_training_and_an_untrained_engine_does_not_train(tmp_path
                                                                         ) -> None:  # type: ignore[no-untyped-def]
    store = deployed_store(tmp_path)
    engine = DecisionEngine(DecisionConfig(), QPolicy(store.load(), "v0001"))
    online = learner(store, engine)
    online.rebase("shipped-v0002")
    assert online.base == "shipped-v0002"
    weights, config = online.trainer._rebase or ({}, None)
    assert config == trained_config(SHIPPED.meta("v0002"))
    assert np.array_equal(weights["w0"], SHIPPED.load("v0002")["w0"])
    online.rebase("v0099")  # unknown: training keeps its base
    assert online.base == "shipped-v0002"
    with pytest.raises(RejectedError, match="no deployed model"):
        learner(store, DecisionEngine(DecisionConfig()))
