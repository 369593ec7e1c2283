"""Safe online learning in the learn role: continue from the deployed model, shadow-evaluate every
candidate, promote it as a new checkpoint or reject it; both verdicts are events.

The trainer starts from the deployed checkpoint's weights and the DQN config saved with it (never
`DQNConfig()`), and the engine's transitions carry the reward that checkpoint was trained with.
Every `publish_every` gradient steps the trainer thread hands over a candidate; it is replayed
beside the running model on the recent demand of this worker's services
(`agents.promotion.ShadowEvaluator`) and promoted only when it meets the SLO budget at no higher
cost. A promotion is a new version in the local checkpoint folder (so `novacron model rollback`
works as before) and runs at once; a rejection changes nothing. Torch loads only in the thread.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from agents.decision import DecisionEngine
from agents.promotion import RecentDemand, ShadowEvaluator, ShadowVerdict, promotion_event
from models.dqn.checkpoints import CheckpointMeta, CheckpointStore
from models.dqn.config import DQNConfig
from models.dqn.policy import QPolicy
from models.dqn.reward import RewardConfig
from models.slo import SLOConfig
from schemas.errors import RejectedError
from streams.settings import OnlineTrainingConfig

__all__ = ["OnlineLearning", "deployed_checkpoint", "trained_config"]

log = logging.getLogger(__name__)


def deployed_checkpoint(version: str | None, store: CheckpointStore, shipped: CheckpointStore
                        ) -> tuple[dict[str, np.ndarray], CheckpointMeta]:
    """Weights and metadata of a running model's version (`v0004` from the local folder,
    `shipped-v0003` from the package). RejectedError when it has no checkpoint (untrained)."""
    if not version or version == "untrained":
        raise RejectedError("no deployed model to continue from (run `novacron train dqn`)")
    plain = version.removeprefix("shipped-")
    folder = store if plain == version else shipped
    return folder.load(plain), folder.meta(plain)


def trained_config(meta: CheckpointMeta) -> DQNConfig:
    """The DQN config a checkpoint was trained with (`config.train.dqn` of its metadata)."""
    saved = meta.config.get("train", {}).get("dqn")
    if not isinstance(saved, dict):
        raise RejectedError(f"model {meta.version} records no DQN training config: online "
                            "training would not continue it as trained")
    return DQNConfig.model_validate(saved)


class OnlineLearning:
    """The background trainer, the shadow evaluator and the promotion of candidates."""

    def __init__(self, engine: DecisionEngine, store: CheckpointStore, shipped: CheckpointStore,
                 cfg: OnlineTrainingConfig, slo: SLOConfig) -> None:
        from models.dqn.background import BackgroundTrainer

        self.engine, self.store, self.shipped, self.slo = engine, store, shipped, slo
        weights, meta = deployed_checkpoint(engine.policy.version, store, shipped)
        self.base, self.base_meta = engine.policy.version or meta.version, meta
        self._base_steps = 0  # the trainer's step count when `base` was set
        config = trained_config(meta)
        self._use_trained_reward(meta)
        self.demand = RecentDemand(cfg.shadow.window_samples)
        engine.demand = self.demand
        self.evaluator = ShadowEvaluator(cfg.shadow, slo, engine.config)
        self.trainer = BackgroundTrainer(config, self.candidate, initial=weights,
                                         publish_every=cfg.publish_every)
        self.verdicts: list[ShadowVerdict] = []
        """Every verdict so far (newest last; tests and the log read it)."""

    def start(self) -> None:
        self.trainer.start()

    def stop(self) -> None:
        self.trainer.stop()

    def rebase(self, version: str) -> None:
        """The deployed model changed (a rollback or deploy): continue from it instead."""
        try:
            weights, meta = deployed_checkpoint(version, self.store, self.shipped)
            config = trained_config(meta)
        except (RejectedError, OSError, ValueError) as exc:
            log.error("online training keeps its base %s: cannot continue from %s: %s",
                      self.base, version, exc)
            return
        self.base, self.base_meta, self._base_steps = version, meta, 0
        self._use_trained_reward(meta)
        self.trainer.rebase(weights, config)

    def candidate(self, weights: dict[str, np.ndarray], grad_steps: int) -> None:
        """Called by the trainer thread with new weights: judge, then promote or reject."""
        deployed = self.engine.policy
        deployed_version = deployed.version or "untrained"
        verdict = self.evaluator.evaluate(deployed, QPolicy(weights, "candidate"),
                                          self.demand.snapshot())
        base, steps = self.base, max(grad_steps - self._base_steps, 0)
        name = f"{base}+{steps}"
        if verdict.promote:
            try:
                name = self._promote(weights, steps, verdict)
                self._base_steps = grad_steps
            except Exception as exc:  # fail closed: an unsaved candidate does not run
                verdict = verdict.model_copy(update={
                    "promote": False, "reason": f"saving the checkpoint failed: {exc}"})
        self.verdicts.append(verdict)
        self.engine.announce(promotion_event(
            verdict, candidate=name, base=base, deployed=deployed_version, grad_steps=steps,
            slo=self.slo))
        log.info("online candidate %s %s: %s", name,
                 "promoted" if verdict.promote else "rejected", verdict.reason)

    def _promote(self, weights: dict[str, np.ndarray], grad_steps: int,
                 verdict: ShadowVerdict) -> str:
        parent = self.base_meta
        config: dict[str, Any] = {**parent.config, "online": {
            "base": self.base, "grad_steps": grad_steps,
            "evaluation": verdict.model_dump(mode="json")}}
        meta = self.store.save(weights, {
            "parent": self.base, "traces": parent.traces, "episodes": parent.episodes,
            "env_steps": parent.env_steps, "config": config})
        self.engine.load_policy(QPolicy(weights, meta.version))
        self.base, self.base_meta = meta.version, meta
        return meta.version

    def _use_trained_reward(self, meta: CheckpointMeta) -> None:
        saved = meta.config.get("decision", {}).get("reward")
        if not isinstance(saved, dict):
            return
        trained = RewardConfig.model_validate(saved)
        if trained != self.engine.config.reward:
            log.info("online training learns from %s's reward %s (the engine had %s)",
                     meta.version, trained, self.engine.config.reward)
            self.engine.config = self.engine.config.model_copy(update={"reward": trained})
