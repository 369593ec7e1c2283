"""The workflow engine: validates a runbook against its context, then runs its DAG (see run.py)."""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable, Mapping
from typing import Any

import httpx

from runbooks.interpolate import EnvSecrets, Redactor, Secrets
from runbooks.journal import InMemoryJournal, Journal, JournalEntry
from runbooks.model import Runbook
from runbooks.params import CONFIG_KINDS
from runbooks.resolve import check_overrides
from runbooks.results import StepResult, WorkflowResult, WorkflowStatus
from runbooks.run import WorkflowRun
from runbooks.runtime import ApprovalWaiter, Emit, EngineConfig, StepHandler
from runbooks.steps import HANDLERS
from runbooks.timing import Clock, SystemClock
from runbooks.validate import validate
from schemas import Action, Event

__all__ = ["Engine", "StepResult", "WorkflowResult", "WorkflowStatus"]

def _ignore(event: Event) -> None:
    return None


class Engine:
    """Runs runbooks: pure logic with injected clock, emitter, journal, secrets and HTTP client."""

    def __init__(
        self,
        config: EngineConfig | None = None,
        *,
        clock: Clock | None = None,
        emit: Emit | None = None,
        journal: Journal | None = None,
        secrets: Secrets | None = None,
        http: httpx.AsyncClient | None = None,
        wait_for_approval: ApprovalWaiter | None = None,
        resolve: Callable[[str], Runbook] | None = None,
        handlers: Mapping[str, StepHandler] | None = None,
        configured: Callable[[Runbook], dict[str, Any]] | None = None,
    ) -> None:
        self.config = config or EngineConfig()
        self.clock = clock or SystemClock()
        self.emit = emit or _ignore
        self.journal: Journal = journal or InMemoryJournal()
        self.secrets = secrets or EnvSecrets()
        self._http = http
        self._own_http = http is None
        self.wait_for_approval = wait_for_approval
        self.resolve = resolve
        self.handlers = {**HANDLERS, **(handlers or {})}
        self.configured = configured  # config values (endpoints, …) of a sub-workflow's runbook
        self.rng = random.Random(self.config.jitter_seed)

    @property
    def http(self) -> httpx.AsyncClient:
        """The shared HTTP client (created on first use unless injected)."""
        if self._http is None:
            self._http = httpx.AsyncClient(follow_redirects=False)
        return self._http

    async def aclose(self) -> None:
        """Close what the engine created."""
        if self._own_http and self._http is not None:
            await self._http.aclose()
            self._http = None

    def context(self, runbook: Runbook, variables: Mapping[str, Any]) -> dict[str, Any]:
        """The variables a run sees: the runbook's defaults, overridden by the given ones."""
        defaults = {n: p.default for n, p in runbook.declared.items()
                    if p.default is not None or p.nullable}
        return {**defaults, **variables}

    def validate(self, runbook: Runbook, variables: Mapping[str, Any]) -> dict[str, Any]:
        """Check the runbook against its context; raise ValidationError; return the context."""
        ctx = self.context(runbook, variables)
        known = None
        if self.resolve is not None:
            resolve = self.resolve

            def known(rid: str) -> bool:
                try:
                    resolve(rid)
                except KeyError:
                    return False
                return True

        validate(runbook, ctx, self.secrets, self.config, known, set(self.handlers))
        return ctx

    async def run(
        self,
        runbook: Runbook,
        variables: Mapping[str, Any],
        *,
        parent: Event | None = None,
        action_id: str | None = None,
        resume: JournalEntry | None = None,
        dry_run: bool = False,
        depth: int = 0,
    ) -> WorkflowResult:
        """Validate, then run the DAG; raises ValidationError before any step when invalid."""
        ctx = self.validate(runbook, variables)
        action_id = action_id or str(uuid.uuid4())
        if parent is None:
            parent = Action(
                action_id=action_id,
                action_type="run_runbook",
                resource_id=str(ctx.get("resource_id") or runbook.id),
                runbook=runbook.id,
                source=self.config.source,
            )
        if resume is None:
            resume = await self.journal.get(action_id)
        run = WorkflowRun(self, runbook, ctx, parent, action_id, resume, depth, Redactor())
        return await run.execute(dry_run=dry_run)

    async def run_child(
        self,
        runbook_id: str,
        variables: dict[str, Any],
        action_id: str,
        parent: Event,
        depth: int,
        *,
        inherited: Mapping[str, Any] | None = None,
    ) -> WorkflowResult:
        """Run a sub-workflow (its own journal entry, so it too runs at most once).

        The child sees the parent's variables plus the step's `variables` (type-checked against
        the child's declarations). Its endpoint, credential and webhook parameters never come from
        the parent: only from its own file or the configuration (`configured`).
        """
        if self.resolve is None:
            raise KeyError("no runbook library configured for sub-workflows")
        if depth > self.config.max_depth:
            from schemas.errors import NonRetryableError

            raise NonRetryableError(f"sub-workflow nesting deeper than {self.config.max_depth}")
        entry = await self.journal.get(action_id)
        if entry is not None and entry.done:
            return WorkflowResult(action_id, runbook_id, "skipped")
        runbook = self.resolve(runbook_id)
        typed = check_overrides(runbook, variables, "workflow")
        kept = {k: v for k, v in (inherited or {}).items()
                if k not in runbook.declared or runbook.declared[k].kind not in CONFIG_KINDS}
        configured = self.configured(runbook) if self.configured is not None else {}
        return await self.run(
            runbook, {**kept, **typed, **configured}, parent=parent, action_id=action_id,
            resume=entry, depth=depth,
        )

