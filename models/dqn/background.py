"""Online training off the event loop: a thread that feeds the trainer and publishes new weights."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from typing import Any

import numpy as np

from models.dqn.config import DQNConfig
from models.extras import require

__all__ = ["BackgroundTrainer"]

Transition = tuple[np.ndarray, int, float, np.ndarray, bool, np.ndarray]


class BackgroundTrainer:
    """`submit()` transitions from the event loop; a daemon thread trains and calls `publish`.

    Torch is imported in the thread's start, so only the process that starts it loads torch
    (the `learn` role). `publish(weights, grad_steps)` receives numpy weights every
    `publish_every` gradient steps: hand them to `DecisionEngine.load_policy(QPolicy(...))`
    or save a checkpoint.
    """

    def __init__(self, config: DQNConfig, publish: Callable[[dict[str, np.ndarray], int], Any],
                 initial: dict[str, np.ndarray] | None = None, steps_per_batch: int = 8,
                 publish_every: int = 2_000) -> None:
        self.config, self.publish, self.initial = config, publish, initial
        self.steps_per_batch, self.publish_every = steps_per_batch, publish_every
        self.inbox: queue.Queue[Transition] = queue.Queue(maxsize=100_000)
        self.stop_event = threading.Event()
        self.thread: threading.Thread | None = None
        self.grad_steps = 0
        self.dropped = 0
        self._rebase: tuple[dict[str, np.ndarray], DQNConfig] | None = None

    def submit(self, transitions: list[Transition]) -> None:
        """Non-blocking: a full inbox drops transitions (counted) rather than stall the stream."""
        for item in transitions:
            try:
                self.inbox.put_nowait(item)
            except queue.Full:
                self.dropped += 1

    def rebase(self, weights: dict[str, np.ndarray], config: DQNConfig) -> None:
        """Continue from other weights and config (the deployed model changed): the thread
        picks them up before its next batch and keeps the replay buffer; steps count from 0."""
        self._rebase = (weights, config)

    def start(self) -> None:
        require("torch", "online DQN training (NOVACRON_DECISION_HOST__ONLINE_TRAINING)")
        self.thread = threading.Thread(target=self._run, name="dqn-trainer", daemon=True)
        self.thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self.stop_event.set()
        if self.thread is not None:
            self.thread.join(timeout)

    def _run(self) -> None:
        from models.dqn.trainer import DQNTrainer

        trainer = DQNTrainer(self.config, self.initial)
        last_published = 0
        while not self.stop_event.is_set():
            if (rebase := self._rebase) is not None:
                self._rebase = None
                trainer = self._rebuilt(DQNTrainer, trainer, *rebase)
                last_published = 0
            self._drain(trainer)
            before = trainer.grad_steps
            trainer.train_steps(self.steps_per_batch)
            self.grad_steps = trainer.grad_steps
            if trainer.grad_steps == before:
                self.stop_event.wait(0.2)  # nothing to learn yet: idle without spinning
            if self.grad_steps - last_published >= self.publish_every:
                last_published = self.grad_steps
                self.publish(trainer.export_weights(), self.grad_steps)

    def _rebuilt(self, factory: Any, old: Any, weights: dict[str, np.ndarray],
                 config: DQNConfig) -> Any:
        self.config, self.initial = config, weights
        trainer = factory(config, weights)
        if len(old.buffer) and config.layers == old.config.layers:
            trainer.buffer = old.buffer  # the experience stays valid for the new start
        self.grad_steps = 0
        return trainer

    def _drain(self, trainer: Any) -> None:
        while True:
            try:
                trainer.push(*self.inbox.get_nowait())
            except queue.Empty:
                return
