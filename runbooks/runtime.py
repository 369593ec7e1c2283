"""What a step handler gets: the engine's config, its I/O seams and the step's interpolator."""

from __future__ import annotations

import inspect
import random
import sys
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import httpx
from pydantic import BaseModel, Field

from runbooks.effectors import EffectorsConfig
from runbooks.interpolate import Interpolator, Redactor, Secrets
from runbooks.journal import Journal
from runbooks.model import Step
from runbooks.results import WorkflowResult
from runbooks.timing import Clock
from schemas import Event

__all__ = [
    "ApprovalWaiter",
    "ChildRunner",
    "Emit",
    "EngineConfig",
    "RunHost",
    "StepContext",
    "StepHandler",
    "emit_event",
]

Emit = Callable[[Event], Awaitable[None] | None]
"""Where events go (the lead sends them to Kafka); sync or async."""
ChildRunner = Callable[[str, dict[str, Any], str], Awaitable[WorkflowResult]]
"""Runs a sub-workflow: (runbook id, variables, child action id) → result."""


class ApprovalWaiter(Protocol):
    """Waits for a human decision on a request id."""

    async def __call__(
        self, request_id: str, timeout: float
    ) -> Literal["approved", "rejected", "timeout"]: ...


class EngineConfig(BaseModel):
    """Limits and defaults of the workflow engine."""

    max_parallel: int = Field(default=8, ge=1)
    """Steps of one workflow running at once (a runbook's max_parallel may lower it)."""
    allowed_executables: list[str] | None = None
    """If set, command steps may only run these executables (name or absolute path)."""
    python_executable: str = sys.executable
    """What argv[0] `python` runs: the worker's own interpreter (for `python -m runbooks.…`)."""
    max_value_length: int = Field(default=65_536, ge=1)
    """Longest variable value accepted (Linux refuses single arguments over 128 KiB)."""
    default_webhook_url: str | None = None
    """Webhook of notification steps that name none."""
    http_timeout: float = Field(default=30.0, gt=0)
    """Per-request timeout of http, notification and argocd steps, seconds."""
    approval_timeout: float = Field(default=3600.0, gt=0)
    """How long an approval step waits by default, seconds."""
    output_limit: int = Field(default=4096, ge=0)
    """Characters of command output / response body kept in outcomes."""
    max_depth: int = Field(default=4, ge=0)
    """Deepest sub-workflow nesting (stops runbooks that call each other)."""
    jitter_seed: int = 0
    """Seed of the backoff jitter (deterministic runs)."""
    source: str = "novacron.executor"
    """`source` of every event the engine emits."""
    effectors: EffectorsConfig = Field(default_factory=EffectorsConfig)
    """git, terraform, kubernetes and aws steps: binaries, auth, timeouts."""


@dataclass
class StepContext:
    """One attempt of one step."""

    step: Step
    attempt: int
    action_id: str
    parent: Event
    interp: Interpolator
    redactor: Redactor
    config: EngineConfig
    clock: Clock
    emit: Emit
    http_factory: Callable[[], httpx.AsyncClient]
    secrets: Secrets
    wait_for_approval: ApprovalWaiter | None
    run_child: ChildRunner

    @property
    def http(self) -> httpx.AsyncClient:
        """The engine's shared HTTP client (created on first use: TLS setup costs ~0.1 s)."""
        return self.http_factory()

    def param(self, name: str, default: Any = None) -> Any:
        """A parameter with its `${var}`s filled."""
        if name not in self.step.parameters:
            return default
        return self.interp.value(self.step.parameters[name])

    def clip(self, text: str) -> str:
        """Text cut to the output limit and redacted."""
        return self.redactor.text(text[-self.config.output_limit :] if text else "")


StepHandler = Callable[[StepContext], Awaitable[dict[str, Any]]]
"""Runs one attempt; returns output data; raises from schemas.errors on failure."""


async def emit_event(emit: Emit, event: Event) -> None:
    """Call a sync or async emitter."""
    result = emit(event)
    if inspect.isawaitable(result):
        await result


class RunHost(Protocol):
    """What one workflow run needs of the engine that started it (`runbooks.engine.Engine`).

    A protocol, so `runbooks.run` does not import the engine that imports it.
    """

    @property
    def config(self) -> EngineConfig: ...
    @property
    def clock(self) -> Clock: ...
    @property
    def emit(self) -> Emit: ...
    @property
    def journal(self) -> Journal: ...
    @property
    def secrets(self) -> Secrets: ...
    @property
    def http(self) -> httpx.AsyncClient: ...
    @property
    def rng(self) -> random.Random: ...
    @property
    def handlers(self) -> Mapping[str, StepHandler]: ...
    @property
    def wait_for_approval(self) -> ApprovalWaiter | None: ...

    async def run_child(self, runbook_id: str, variables: dict[str, Any], action_id: str,
                        parent: Event, depth: int, *,
                        inherited: Mapping[str, Any] | None = None) -> WorkflowResult:
        """Run a sub-workflow under its own journal entry."""
        ...
