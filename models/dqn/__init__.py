"""The decision engine's DQN: features, safety mask, numpy policy, replay, trainer, checkpoints.

Only `models.dqn.trainer` imports torch; everything else here is numpy and safe for the
per-event path of the `learn` role.
"""

from __future__ import annotations

from models.dqn.features import FEATURES, FeatureConfig, StateBuilder
from models.dqn.policy import QPolicy, confidence
from models.dqn.replay import ReplayBuffer
from models.dqn.safety import SafetyConfig, SafetyGuard

__all__ = [
    "FEATURES",
    "FeatureConfig",
    "QPolicy",
    "ReplayBuffer",
    "SafetyConfig",
    "SafetyGuard",
    "StateBuilder",
    "confidence",
]
