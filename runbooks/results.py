"""What a workflow run returns: its status and the final state of each step."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = ["StepResult", "WorkflowResult", "WorkflowStatus"]

WorkflowStatus = Literal[
    "succeeded", "succeeded_with_failures", "failed", "compensated", "skipped", "rejected"
]
"""succeeded: every step succeeded or was skipped by its own `when`. succeeded_with_failures:
every critical step did, at least one step succeeded, but a non-critical one failed, timed out
or was skipped because a dependency did not succeed. failed: a critical step failed, timed out
or was skipped because a dependency did not succeed, or no step succeeded while one did not.
compensated: a critical step did not succeed and every completed step was undone."""


@dataclass
class StepResult:
    """Final state of one step."""

    step_id: str
    status: str
    """succeeded, failed, timed_out, skipped or compensated."""
    attempts: int = 0
    output: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    duration_ms: float = 0.0


@dataclass
class WorkflowResult:
    """Outcome of one workflow run."""

    action_id: str
    runbook_id: str
    status: WorkflowStatus
    steps: dict[str, StepResult] = field(default_factory=dict)
    error: str | None = None
    sla_breached: bool = False
    compensated: list[str] = field(default_factory=list)
    """Steps undone, in the order they were compensated."""
    resumed: bool = False
    """The run continued an interrupted one."""

    @property
    def ok(self) -> bool:
        return self.status == "succeeded"
