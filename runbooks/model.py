"""The runbook model: metadata, steps, retry policies and compensations (pydantic, immutable)."""

from __future__ import annotations

import hashlib
import json
import re
import shlex
from functools import cached_property
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from runbooks.bounds import unbounded
from runbooks.interpolate import VAR
from runbooks.params import CONFIG_KINDS, IDENTITY, ParamError, Parameter, check_value, infer
from runbooks.positions import sensitive_uses
from runbooks.shell import script_references
from schemas.errors import RejectedError

__all__ = [
    "ALIASES",
    "STEP_TYPES",
    "Compensation",
    "Metadata",
    "Parameter",
    "RetryPolicy",
    "Runbook",
    "Step",
    "ValidationError",
]

STEP_TYPES: frozenset[str] = frozenset(
    {"command", "http", "notification", "kafka", "approval", "workflow", "argocd", "noop", "sleep",
     "git", "terraform", "kubernetes", "aws"}
)
"""Step types the engine runs (after aliases are resolved)."""

ALIASES: dict[str, str] = {"api": "http", "manual": "approval", "sub_workflow": "workflow"}
"""Other names for step types: the seed writes `api` for http calls."""


class ValidationError(RejectedError):
    """A runbook or its context is invalid; nothing ran. `problems` lists each one by step."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("; ".join(problems))


class RetryPolicy(BaseModel):
    """How often and how patiently a failed step is tried again."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    max_attempts: int = Field(default=1, ge=1, le=100)
    """Attempts in total, the first one included."""
    backoff: Literal["fixed", "linear", "exponential"] = "exponential"
    """Delay growth: fixed = base; linear = base·n; exponential = base·multiplier^(n-1)."""
    base_delay: float = Field(default=1.0, ge=0)
    """Delay after the first failed attempt, seconds."""
    multiplier: float = Field(default=2.0, ge=1, le=10)
    """Growth factor of exponential backoff."""
    max_delay: float = Field(default=60.0, ge=0)
    """Cap on any one delay, seconds (applied after jitter)."""
    jitter: float = Field(default=0.1, ge=0, le=1)
    """Relative jitter: the delay is drawn uniformly from [d·(1-j), d·(1+j)]."""
    non_retryable_exit_codes: list[int] = Field(default_factory=lambda: [126, 127])
    """Exit codes of command steps that fail at once (not executable, not found)."""


class Compensation(BaseModel):
    """The step that undoes a completed step (saga); same fields as a step, minus the DAG ones."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    action_type: str
    """Step type of the compensation."""
    action: str | list[str] | None = None
    """What to run (see Step.action)."""
    parameters: dict[str, Any] = Field(default_factory=dict)
    """Type-specific parameters."""
    timeout: float | None = Field(default=None, gt=0)
    """Seconds before the compensation is cancelled."""
    retry: RetryPolicy = Field(default_factory=RetryPolicy)
    """Retry policy of the compensation."""
    shell_reviewed: str | None = Field(default=None, min_length=10, max_length=1024)
    """Why passing variables to an interpreter's code argument is safe here (see Step)."""
    argv: tuple[str, ...] = ()
    """Command template split at load time (filled by the loader, never from event data)."""

    @property
    def kind(self) -> str:
        """The canonical step type."""
        return ALIASES.get(self.action_type, self.action_type)


class Step(BaseModel):
    """One node of the workflow DAG."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(min_length=1, max_length=128)
    """Unique id within the runbook (the schema allows 64 characters; compensations add 11)."""
    name: str = ""
    """Human-readable name."""
    action_type: str
    """command, http (api), notification, kafka, approval (manual), workflow, argocd, noop, sleep"""
    action: str | list[str] | None = None
    """Command line (split with shlex at load time) or argv list, URL, message, runbook id, …"""
    parameters: dict[str, Any] = Field(default_factory=dict)
    """Type-specific parameters (method, headers, data, channel, app, …)."""
    dependencies: list[str] = Field(default_factory=list)
    """Ids of steps that must succeed first."""
    timeout: float | None = Field(default=None, gt=0)
    """Seconds per attempt before the step is cancelled."""
    retry_count: int = Field(default=0, ge=0, le=99)
    """Seed shorthand: extra attempts after the first (max_attempts = retry_count + 1)."""
    retry: RetryPolicy | None = None
    """Full retry policy; overrides retry_count."""
    critical: bool = False
    """A failed critical step fails the workflow and compensates the completed steps."""
    idempotent: bool = False
    """Safe to run twice: re-run after a crash that interrupted it (else it fails)."""
    when: str | None = None
    """Condition over variables and `steps['id'].status`; false → the step is skipped."""
    compensation: Compensation | None = None
    """Undo action, run in reverse completion order when a critical step fails."""
    shell_reviewed: str | None = Field(default=None, min_length=10, max_length=1024)
    """The reason a `${var}` may reach an interpreter's code argument (`sh -c`, `python -c`, …)
    in this step; without it validation refuses such a step. Event-overridable parameters are
    refused there even when reviewed."""
    argv: tuple[str, ...] = ()
    """Command template split at load time (filled by the loader, never from event data)."""

    @property
    def kind(self) -> str:
        """The canonical step type."""
        return ALIASES.get(self.action_type, self.action_type)

    @property
    def policy(self) -> RetryPolicy:
        """The effective retry policy."""
        if self.retry is not None:
            return self.retry
        return RetryPolicy(max_attempts=self.retry_count + 1)

    def compensation_step(self) -> Step | None:
        """The compensation as a runnable step (id `<id>.compensate`), or None."""
        comp = self.compensation
        if comp is None:
            return None
        return Step(
            id=f"{self.id}.compensate",
            name=f"undo {self.name or self.id}",
            action_type=comp.action_type,
            action=comp.action,
            parameters=comp.parameters,
            timeout=comp.timeout,
            retry=comp.retry,
            shell_reviewed=comp.shell_reviewed,
            argv=comp.argv,
        )


def split_command(action: str | list[str] | None) -> tuple[str, ...]:
    """Split a command template once, from the runbook's own text, before any ${var} is filled."""
    if action is None:
        return ()
    if isinstance(action, list):
        return tuple(str(a) for a in action)
    return tuple(shlex.split(action))


class Metadata(BaseModel):
    """Who the runbook is."""

    model_config = ConfigDict(frozen=True, extra="allow")

    id: str = Field(min_length=1, max_length=128)
    """Runbook id (what actions refer to)."""
    name: str = ""
    """Human-readable name."""
    type: str = "operation"
    """Category (incident_response, scaling, …)."""
    version: str = "1"
    """Version of the runbook text."""
    description: str = ""
    """What it does."""
    implements: list[str] = Field(default_factory=list)
    """The action types whose effect this runbook has (scale_up, migrate_vm, …): what policies
    judge, whichever action type carried it. Empty: no effect a policy names (e.g. notify)."""
    selectable: bool = False
    """Events may pick this runbook by id through a `run_runbook` decision."""

    @model_validator(mode="before")
    @classmethod
    def _version_as_text(cls, data: Any) -> Any:
        # YAML reads `version: 1.0` as a float; the seed writes it that way
        if isinstance(data, dict) and isinstance(data.get("version"), int | float):
            data = {**data, "version": str(data["version"])}
        return data


class Runbook(BaseModel):
    """A workflow: metadata, default variables, an SLA and a DAG of steps."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    metadata: Metadata
    """Identity of the runbook."""
    parameters: dict[str, Parameter] = Field(default_factory=dict)
    """Declared `${var}`s: type, bounds, default, overridable by events or not, kind."""
    variables: dict[str, Any] = Field(default_factory=dict)
    """Seed format: fixed values for `${var}`s (typed by their value, never overridable)."""
    sla: float | None = Field(default=None, gt=0)
    """Seconds from start after which an `sla_breached` alert is emitted."""
    max_parallel: int | None = Field(default=None, ge=1)
    """Bound on steps running at once (default: the engine's)."""
    steps: list[Step] = Field(min_length=1)
    """The DAG."""

    @field_validator("parameters", "variables")
    @classmethod
    def _names(cls, value: dict[str, Any]) -> dict[str, Any]:
        for name in value:
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
                raise ValueError(f"{name!r} is not a variable name")
            if name in IDENTITY:
                raise ValueError(f"{name} is set by the executor from the action, not declared")
        return value

    @model_validator(mode="after")
    def _declarations(self) -> Runbook:
        problems = [f"{n} is both a parameter and a variable"
                    for n in sorted(set(self.parameters) & set(self.variables))]
        for name, spec in self.parameters.items():
            if spec.default is not None:
                try:
                    check_value(spec, spec.default)
                except ParamError as exc:
                    problems.append(f"parameter {name}: default {exc}")
        problems += _misused(self)
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @model_validator(mode="after")
    def _split_commands(self) -> Runbook:
        # argv templates come from the runbook text only; event data is filled in per argument later
        steps = []
        for step in self.steps:
            update: dict[str, Any] = {}
            if step.kind == "command" and not step.argv:
                update["argv"] = split_command(step.action)
            comp = step.compensation
            if comp and comp.kind == "command" and not comp.argv:
                update["compensation"] = comp.model_copy(
                    update={"argv": split_command(comp.action)}
                )
            steps.append(step.model_copy(update=update) if update else step)
        object.__setattr__(self, "steps", steps)
        return self

    @property
    def id(self) -> str:
        return self.metadata.id

    @cached_property
    def content_hash(self) -> str:
        """SHA-256 of the runbook's canonical JSON: what the gate approved is what runs."""
        text = json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode("utf-8")).hexdigest()

    @cached_property
    def declared(self) -> dict[str, Parameter]:
        """Every declared variable: the parameters, plus seed-format variables typed by value."""
        return {**{n: infer(v) for n, v in self.variables.items()}, **self.parameters}

    def step(self, step_id: str) -> Step:
        """The step with this id."""
        for step in self.steps:
            if step.id == step_id:
                return step
        raise KeyError(step_id)


def _code_uses(step: Step) -> list[tuple[str, str, str]]:
    """Variables an interpreter started by a command step would run as code."""
    if step.kind != "command":
        return []
    argv = step.argv or split_command(step.action)
    return [(m.group(2), "code", what) for what, arg in script_references(argv)
            for m in VAR.finditer(arg) if not m.group(1)]


def _misused(runbook: Runbook) -> list[str]:
    """Parameters that sit where a value picks a target, secret or code but are not fixed."""
    problems = []
    for step in runbook.steps:
        comp = step.compensation_step()
        for s in [step] + ([comp] if comp else []):
            problems += unbounded(s, runbook.parameters)
            for var, kind, where in sensitive_uses(s) + _code_uses(s):
                spec = runbook.parameters.get(var)
                if spec is None:
                    continue
                if spec.overridable:
                    problems.append(f"step {s.id}: parameter {var} is used as {where} ({kind}) "
                                    "and must not be overridable by events")
                elif kind in CONFIG_KINDS and spec.kind == "value":
                    problems.append(f"step {s.id}: parameter {var} is used as {where}; "
                                    f"declare it `kind: {kind}`")
    return problems
