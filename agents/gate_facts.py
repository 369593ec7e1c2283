"""What the policy gate knows of a resource (`input.resource`), read from its declared baseline."""

from __future__ import annotations

from typing import Any

from agents.drift.baseline import BaselineStore
from schemas import Decision, DesiredState

__all__ = ["ResourceFacts", "facts_of"]

_FACT_KEYS = ("environment", "region", "zone", "cluster", "tier", "owner")


def facts_of(state: DesiredState) -> dict[str, Any]:
    """Facts about a resource for `input.resource`, from its declared baseline.

    `environment` (alias `env`), `region`, … are read from the config's top level, its `labels`
    and its `tags`; string-valued labels and tags become `labels`.
    """
    cfg = state.config
    labels: dict[str, str] = {}
    for name in ("tags", "labels"):
        src = cfg.get(name)
        if isinstance(src, dict):
            labels.update({k: v for k, v in src.items() if isinstance(v, str)})
    facts: dict[str, Any] = {"type": state.resource_type, "labels": labels}
    for src in (labels, cfg):
        if "env" in src and isinstance(src["env"], str):
            facts["environment"] = src["env"]
        for key in _FACT_KEYS:
            if isinstance(src.get(key), (str, int, float, bool)):
                facts[key] = src[key]
    return facts


class ResourceFacts:
    """The gate's view of the declared baselines: the same BaselineStore drift diffs against
    (the process's one copy of the `desired` topic, agents/shared.py), so one update of desired
    state reaches both; a fresh store when none is given (tests)."""

    def __init__(self, baselines: BaselineStore | None = None) -> None:
        self.baselines = baselines if baselines is not None else BaselineStore()

    def context_for(self, decision: Decision) -> dict[str, Any] | None:
        """`{"resource": facts}` for `PolicyGate.evaluate`; a drift remediation's baseline
        config (in its params) is used when the resource has no baseline here yet."""
        state = self.baselines.get(decision.resource_id)
        if state is None and isinstance(decision.params.get("baseline_config"), dict):
            state = DesiredState(resource_id=decision.resource_id,
                                 resource_type=str(decision.params.get("resource_type") or "?"),
                                 config=decision.params["baseline_config"])
        return {"resource": facts_of(state)} if state is not None else None

    def __len__(self) -> int:
        return len(self.baselines)
