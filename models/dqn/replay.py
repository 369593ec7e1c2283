"""A fixed-size experience replay buffer of (state, action, reward, next state, done, next mask)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = ["ReplayBuffer"]


class ReplayBuffer:
    """Circular numpy buffer; `sample` draws uniformly with its own seeded generator."""

    def __init__(self, capacity: int = 100_000, n_features: int = 9, n_actions: int = 8,
                 seed: int = 0) -> None:
        self.capacity = capacity
        self.states = np.zeros((capacity, n_features), dtype=np.float32)
        self.actions = np.zeros(capacity, dtype=np.int64)
        self.rewards = np.zeros(capacity, dtype=np.float32)
        self.next_states = np.zeros((capacity, n_features), dtype=np.float32)
        self.dones = np.zeros(capacity, dtype=np.float32)
        self.next_masks = np.ones((capacity, n_actions), dtype=bool)
        self.size = 0
        self.cursor = 0
        self.rng = np.random.default_rng(seed)

    def __len__(self) -> int:
        return self.size

    def push(self, state: np.ndarray, action: int, reward: float, next_state: np.ndarray,
             done: bool = False, next_mask: np.ndarray | None = None) -> None:
        i = self.cursor
        self.states[i], self.actions[i], self.rewards[i] = state, action, reward
        self.next_states[i], self.dones[i] = next_state, float(done)
        self.next_masks[i] = True if next_mask is None else next_mask
        self.cursor = (i + 1) % self.capacity
        self.size = min(self.size + 1, self.capacity)

    def sample(self, batch_size: int) -> tuple[np.ndarray, ...]:
        idx = self.rng.integers(0, self.size, size=batch_size)
        return (self.states[idx], self.actions[idx], self.rewards[idx], self.next_states[idx],
                self.dones[idx], self.next_masks[idx])

    def save(self, path: str | Path) -> None:
        """Export the filled part (for the trainer in another process)."""
        n = self.size
        np.savez_compressed(path, states=self.states[:n], actions=self.actions[:n],
                            rewards=self.rewards[:n], next_states=self.next_states[:n],
                            dones=self.dones[:n], next_masks=self.next_masks[:n])

    def extend_from(self, path: str | Path) -> int:
        """Append the transitions of an exported buffer; returns how many."""
        with np.load(path) as data:
            rows = zip(data["states"], data["actions"], data["rewards"], data["next_states"],
                       data["dones"], data["next_masks"], strict=True)
            count = 0
            for s, a, r, s2, d, m in rows:
                self.push(s, int(a), float(r), s2, bool(d), m)
                count += 1
        return count
