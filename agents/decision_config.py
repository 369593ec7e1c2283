"""Settings of the decision engine: the state, safety limits, sizing, reward and the gate."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from models.dqn.explain import ImpactModel
from models.dqn.features import FeatureConfig
from models.dqn.reward import RewardConfig
from models.dqn.safety import SafetyConfig

__all__ = ["DecisionConfig"]


class DecisionConfig(BaseModel):
    """Settings of the decision engine (safety limits, gate, sizing, reward)."""

    features: FeatureConfig = Field(default_factory=FeatureConfig)
    """How telemetry becomes the 9-feature state."""
    safety: SafetyConfig = Field(default_factory=SafetyConfig)
    """Hard limits that mask actions before the choice."""
    impact: ImpactModel = Field(default_factory=ImpactModel)
    """Sizing of scale steps and the expected-impact model."""
    reward: RewardConfig = Field(default_factory=RewardConfig)
    """The reward that turns outcomes and the following telemetry into learning signal."""
    min_confidence: float = Field(default=0.3, ge=0, le=1)
    """Below this confidence the engine does not act on its own."""
    low_confidence: Literal["no_action", "escalate"] = "escalate"
    """What happens below min_confidence: nothing, or a decision that requires approval."""
    confidence_temperature: float = Field(default=0.02, gt=0)
    """Softmax temperature of the confidence, in reward units (see models.dqn.policy)."""
    shadow: bool = False
    """Shadow mode: decisions are emitted with mode=shadow, scored, never executed."""
    failure_penalty: float = Field(default=0.1, ge=0)
    """Extra penalty when the action's outcome is failed / timed out."""
    outcome_timeout_seconds: float = Field(default=600.0, gt=0)
    """An action whose outcome has not arrived by then is dropped from learning."""
    replay_size: int = Field(default=50_000, ge=10)
    """Capacity of the engine's replay buffer (exported for the trainer)."""
    seed: int = 0
    """Seed of the initial random weights when no trained model is loaded."""
    resource_types: tuple[str, ...] = ("service", "scaling_group")
    """Resource types that are decision units (other samples are ignored by the agent)."""
