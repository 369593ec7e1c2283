"""What a plan gate answers, and the protocol of one (the seam the terraform step judges by)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

__all__ = ["PlanGate", "PlanVerdict"]


@dataclass(frozen=True)
class PlanVerdict:
    """The plan gate's answer."""

    allowed: bool
    reasons: list[str] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)


class PlanGate(Protocol):
    """Judges a saved plan (`terraform show -json`) before it may be applied."""

    async def check(self, plan: Mapping[str, Any], context: Mapping[str, Any]) -> PlanVerdict:
        """allowed, with the reasons; must fail closed (an error is a denial)."""
        ...
