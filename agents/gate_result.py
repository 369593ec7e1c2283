"""What the policy gate returns for one decision, and engine results computed ahead."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from policies.result import EvalResult
from schemas import Action, Approval, Event, PolicyVerdict

__all__ = ["GateResult", "Ready"]

Ready = Mapping[str, tuple[dict[str, Any], EvalResult | Exception]]
"""Engine results computed ahead, by decision id, with the input each was computed for."""


@dataclass(frozen=True, slots=True)
class GateResult:
    """What one evaluation produced: always a verdict, at most one action or pending approval."""

    verdict: PolicyVerdict
    """The decision-log row."""
    action: Action | None = None
    """Set when the decision may act now."""
    approval: Approval | None = None
    """Set (status pending) when a person has to approve first."""
    result: EvalResult | None = None
    """The engine's raw result."""

    @property
    def events(self) -> list[Event]:
        """Events to publish, in order."""
        return [e for e in (self.verdict, self.approval, self.action) if e is not None]
