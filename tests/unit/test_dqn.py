"""The DQN: numpy inference matches torch, deterministic training, learning, checkpoints, replay."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest
import torch

from models.dqn.checkpoints import CheckpointStore
from models.dqn.config import DQNConfig
from models.dqn.policy import QPolicy, confidence, init_weights, masked_argmax
from models.dqn.replay import ReplayBuffer
from models.dqn.trainer import DQNTrainer  # torch only in this test module
from schemas.errors import RejectedError

SMALL = DQNConfig(layers=(9, 16, 16, 8, 8), warmup=32, batch_size=32, target_update_every=20,
                  buffer_size=1000)


def _fill(trainer: DQNTrainer, n: int = 256, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    for _ in range(n):
        s = rng.random(9).astype(np.float32)
        a = int(rng.integers(0, 8))
        trainer.push(s, a, 1.0 if a == 3 else 0.0, rng.random(9).astype(np.float32), True)


def test_numpy_forward_matches_torch() -> None:
    trainer = DQNTrainer(DQNConfig(seed=3))
    states = np.random.default_rng(1).random((5, 9)).astype(np.float32)
    with torch.no_grad():
        expected = trainer.online(torch.as_tensor(states)).numpy()
    policy = QPolicy(trainer.export_weights())
    np.testing.assert_allclose(policy.q_values(states), expected, rtol=1e-5, atol=1e-5)
    assert policy.q_values(states[0]).shape == (8,)


def test_training_is_deterministic_for_a_seed() -> None:
    runs = []
    for _ in range(2):
        trainer = DQNTrainer(SMALL)
        _fill(trainer)
        trainer.train_steps(30)
        runs.append(trainer.export_weights())
    for key in runs[0]:
        np.testing.assert_array_equal(runs[0][key], runs[1][key])


def test_learns_the_rewarding_action() -> None:
    trainer = DQNTrainer(SMALL.model_copy(update={"lr": 5e-3}))
    _fill(trainer, 512)
    trainer.train_steps(400)
    policy = QPolicy(trainer.export_weights())
    state = np.full(9, 0.5, dtype=np.float32)
    mask = np.ones(8, dtype=bool)
    assert masked_argmax(policy.q_values(state), mask) == 3
    mask[3] = False
    assert masked_argmax(policy.q_values(state), mask) != 3


def test_no_gradient_steps_before_warmup() -> None:
    trainer = DQNTrainer(SMALL)
    _fill(trainer, 10)
    before = trainer.export_weights()["w0"].copy()
    trainer.train_steps(5)
    assert trainer.grad_steps == 0
    np.testing.assert_array_equal(before, trainer.export_weights()["w0"])


def test_epsilon_decays_and_exploration_stays_in_the_mask() -> None:
    trainer = DQNTrainer(SMALL.model_copy(update={"eps_decay_steps": 100}))
    mask = np.zeros(8, dtype=bool)
    mask[[0, 5]] = True
    picks = {trainer.act(np.zeros(9, dtype=np.float32), mask) for _ in range(200)}
    assert picks <= {0, 5}
    assert trainer.epsilon == pytest.approx(SMALL.eps_end)


def test_confidence_from_q_values() -> None:
    mask = np.ones(3, dtype=bool)
    assert confidence(np.array([0.0, 0.0, 0.0]), mask, 1.0) == pytest.approx(1 / 3)
    assert confidence(np.array([10.0, 0.0, 0.0]), mask, 1.0) > 0.99
    assert confidence(np.array([10.0, 0.0, 0.0]), np.array([True, False, False]), 1.0) == 1.0


def test_checkpoints_version_list_and_roll_back(tmp_path: Path) -> None:
    store = CheckpointStore(tmp_path)
    with pytest.raises(RejectedError):
        store.weights_path()
    first = store.save(init_weights(1), {"episodes": 10, "mean_reward": -5.0})
    second = store.save(init_weights(2), {"episodes": 20, "mean_reward": -3.0, "parent": "v0001"})
    assert (first.version, second.version, store.current()) == ("v0001", "v0002", "v0002")
    assert [m.episodes for m in store.list_versions()] == [10, 20]
    np.testing.assert_array_equal(store.load()["w0"], init_weights(2)["w0"])
    assert store.rollback() == "v0001" and store.current() == "v0001"
    np.testing.assert_array_equal(store.load()["w0"], init_weights(1)["w0"])
    with pytest.raises(RejectedError):
        store.rollback()  # nothing before the first version
    assert store.rollback("v0002") == "v0002"
    with pytest.raises(RejectedError):
        store.rollback("v0009")
    policy = QPolicy.load(store.weights_path(), store.current())
    assert policy.version == "v0002" and policy.n_inputs == 9


def test_replay_round_trip(tmp_path: Path) -> None:
    buffer = ReplayBuffer(capacity=4, seed=0)
    for i in range(6):  # wraps around
        buffer.push(np.full(9, i, np.float32), i % 8, float(i), np.zeros(9, np.float32))
    assert len(buffer) == 4
    buffer.save(tmp_path / "replay.npz")
    other = ReplayBuffer(capacity=10)
    assert other.extend_from(tmp_path / "replay.npz") == 4
    assert sorted(other.rewards[:4].tolist()) == [2.0, 3.0, 4.0, 5.0]
    states, actions, *_ = other.sample(3)
    assert states.shape == (3, 9) and actions.shape == (3,)


def test_background_trainer_learns_off_thread_and_publishes() -> None:
    from models.dqn.background import BackgroundTrainer

    published: list[int] = []
    done = threading.Event()

    def publish(weights: dict[str, np.ndarray], steps: int) -> None:
        assert set(weights) >= {"w0", "b0"}
        published.append(steps)
        done.set()

    worker = BackgroundTrainer(SMALL, publish, steps_per_batch=10, publish_every=20)
    rng = np.random.default_rng(0)
    worker.submit([(rng.random(9).astype(np.float32), 1, 0.5, rng.random(9).astype(np.float32),
                    False, np.ones(8, dtype=bool)) for _ in range(100)])
    worker.start()
    assert done.wait(60), "no weights were published"
    worker.stop()
    assert published[0] >= 20 and worker.dropped == 0
