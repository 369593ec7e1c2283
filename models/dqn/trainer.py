"""DQN training in torch (the only torch module): replay, target network, Double DQN, ε-greedy."""

from __future__ import annotations

import numpy as np

from models.dqn.config import DQNConfig
from models.dqn.policy import masked_argmax
from models.dqn.replay import ReplayBuffer
from models.extras import missing_extra

try:
    import torch
    from torch import nn
except ModuleNotFoundError as exc:  # `pip install novacron` without the learn extra
    if exc.name != "torch":
        raise
    raise missing_extra("torch", "DQN training") from exc

__all__ = ["DQNTrainer", "QNetwork"]


class QNetwork(nn.Module):
    """MLP with ReLU hidden layers; layer i is `net.{2i}` so weights export as w{i}/b{i}."""

    def __init__(self, layers: tuple[int, ...]) -> None:
        super().__init__()
        modules: list[nn.Module] = []
        for i, (n_in, n_out) in enumerate(zip(layers[:-1], layers[1:], strict=True)):
            modules.append(nn.Linear(n_in, n_out))
            if i < len(layers) - 2:
                modules.append(nn.ReLU())
        self.net = nn.Sequential(*modules)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def _seed_everything(config: DQNConfig) -> None:
    torch.manual_seed(config.seed)
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(config.threads)


class DQNTrainer:
    """Collects transitions and runs gradient steps; `train_steps(n)` fits a background thread."""

    def __init__(self, config: DQNConfig | None = None,
                 weights: dict[str, np.ndarray] | None = None) -> None:
        self.config = config or DQNConfig()
        _seed_everything(self.config)
        self.online = QNetwork(self.config.layers)
        if weights is not None:
            self.load_weights(weights)
        self.target = QNetwork(self.config.layers)
        self.target.load_state_dict(self.online.state_dict())
        self.optimizer = torch.optim.Adam(self.online.parameters(), lr=self.config.lr)
        self.buffer = ReplayBuffer(self.config.buffer_size, self.config.layers[0],
                                   self.config.layers[-1], seed=self.config.seed)
        self.rng = np.random.default_rng(self.config.seed + 1)
        self.env_steps = 0
        self.grad_steps = 0
        self.last_loss = float("nan")

    @property
    def epsilon(self) -> float:
        c = self.config
        frac = min(1.0, self.env_steps / c.eps_decay_steps)
        return c.eps_start + frac * (c.eps_end - c.eps_start)

    def act(self, state: np.ndarray, mask: np.ndarray, explore: bool = True) -> int:
        """ε-greedy over the allowed actions only (a masked action is never explored either)."""
        self.env_steps += int(explore)
        if explore and self.rng.random() < self.epsilon:
            return int(self.rng.choice(np.flatnonzero(mask)))
        with torch.no_grad():
            q = self.online(torch.as_tensor(state, dtype=torch.float32)).numpy()
        return masked_argmax(q, mask)

    def push(self, state: np.ndarray, action: int, reward: float, next_state: np.ndarray,
             done: bool = False, next_mask: np.ndarray | None = None) -> None:
        self.buffer.push(state, action, reward, next_state, done, next_mask)

    def train_steps(self, n: int = 1) -> float:
        """Up to `n` gradient steps (none before warm-up); returns the last loss."""
        if len(self.buffer) < max(self.config.warmup, self.config.batch_size):
            return self.last_loss
        for _ in range(n):
            self.last_loss = self._step()
        return self.last_loss

    def _step(self) -> float:
        c = self.config
        s, a, r, s2, done, m2 = (torch.as_tensor(x) for x in self.buffer.sample(c.batch_size))
        q = self.online(s).gather(1, a.unsqueeze(1)).squeeze(1)
        with torch.no_grad():
            target_q = self.target(s2).masked_fill(~m2, -1e9)
            if c.double:  # the online net chooses, the target net values
                pick = self.online(s2).masked_fill(~m2, -1e9).argmax(1, keepdim=True)
                best = target_q.gather(1, pick).squeeze(1)
            else:
                best = target_q.max(1).values
            y = r + c.gamma ** c.n_step * (1.0 - done) * best
        loss = nn.functional.smooth_l1_loss(q, y)
        self.optimizer.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(self.online.parameters(), c.grad_clip)
        self.optimizer.step()
        self.grad_steps += 1
        if self.grad_steps % c.target_update_every == 0:
            self.target.load_state_dict(self.online.state_dict())
        return float(loss.item())

    def export_weights(self) -> dict[str, np.ndarray]:
        """Weights as numpy arrays w{i}/b{i}, for `QPolicy` (torch-free inference)."""
        linears = [m for m in self.online.net if isinstance(m, nn.Linear)]
        out: dict[str, np.ndarray] = {}
        for i, layer in enumerate(linears):
            out[f"w{i}"] = layer.weight.detach().numpy().copy()
            out[f"b{i}"] = layer.bias.detach().numpy().copy()
        return out

    def load_weights(self, weights: dict[str, np.ndarray]) -> None:
        linears = [m for m in self.online.net if isinstance(m, nn.Linear)]
        with torch.no_grad():
            for i, layer in enumerate(linears):
                layer.weight.copy_(torch.as_tensor(weights[f"w{i}"]))
                layer.bias.copy_(torch.as_tensor(weights[f"b{i}"]))
