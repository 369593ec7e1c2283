"""The executor agent: runs an Action's runbook at most once per action id and reports Outcomes."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import httpx
from pydantic import BaseModel, Field

from runbooks.engine import Engine, WorkflowResult
from runbooks.fake_infra import uses_fake_infra
from runbooks.interpolate import EnvSecrets, Secrets
from runbooks.journal import WORKFLOW, FileJournal, InMemoryJournal, Journal, JournalEntry
from runbooks.loader import LIBRARY_DIR, Library
from runbooks.model import Runbook, ValidationError
from runbooks.resolve import DEFAULT_RUNBOOKS, RefusedAction, ResolvedAction, Resolver
from runbooks.runtime import ApprovalWaiter, Emit, EngineConfig, emit_event
from runbooks.steps.terraform import terraform_handler
from runbooks.steps.verdict import PlanGate
from runbooks.timing import Clock
from schemas import Action, Event, Outcome

__all__ = [
    "DEFAULT_RUNBOOKS",
    "Executor",
    "ExecutorConfig",
    "FileJournal",
    "InMemoryJournal",
    "Journal",
    "JournalEntry",
    "simulated_runbooks",
]

log = logging.getLogger(__name__)


def simulated_runbooks(library: Library) -> list[str]:
    """Runbooks whose effects are faked (they, or a sub-workflow they run, use fake_infra)."""
    direct = {rid for rid in library.ids() if uses_fake_infra(list(library.get(rid).steps))}
    found = set(direct)
    changed = True
    while changed:  # a runbook that runs a simulated sub-workflow is simulated too
        changed = False
        for rid in library.ids():
            if rid not in found and any(s.kind == "workflow" and str(s.action) in found
                                        for s in library.get(rid).steps):
                found.add(rid)
                changed = True
    return sorted(found)

class ExecutorConfig(BaseModel):
    """How actions map to runbooks and how the engine runs them."""

    runbooks: dict[str, str] = Field(default_factory=lambda: dict(DEFAULT_RUNBOOKS))
    """Action type → runbook id. The govern role resolves with the same mapping and library:
    `run_runbook` may pick only runbooks that declare `metadata.selectable: true`."""
    library_dirs: list[Path] = Field(default_factory=lambda: [LIBRARY_DIR])
    """Folders of YAML runbooks (later folders override earlier ones by id)."""
    defaults: dict[str, Any] = Field(default_factory=dict)
    """Values of endpoint, credential and webhook parameters (e.g. notify_webhook,
    argocd_server), and of variables a seed-format runbook does not declare."""
    secrets_dir: Path | None = None
    """Folder of secret files (`${secret:NAME}` reads `<dir>/NAME` if the env var is unset)."""
    engine: EngineConfig = Field(default_factory=EngineConfig)
    """Engine limits: parallelism, allow-list, timeouts, webhook."""


class Executor:
    """Pure executor: `await handle(action)`; the host feeds actions and ships emitted events."""

    def __init__(
        self,
        config: ExecutorConfig | None = None,
        *,
        journal: Journal,
        emit: Emit,
        clock: Clock | None = None,
        secrets: Secrets | None = None,
        http: httpx.AsyncClient | None = None,
        wait_for_approval: ApprovalWaiter | None = None,
        library: Library | None = None,
        plan_gate: PlanGate | None = None,
    ) -> None:
        self.config = config or ExecutorConfig()
        self.journal = journal
        self.emit = emit
        self.library = library or Library(self.config.library_dirs)
        self.resolver = Resolver(self.library.get, self.config.runbooks, self.config.defaults)
        self.simulated = frozenset(simulated_runbooks(self.library))
        if self.simulated:
            log.warning("executor: runbooks %s use the fake_infra TEST backend: their effects "
                        "are simulated (nothing changes anywhere) and their outcomes are marked "
                        "simulated", ", ".join(sorted(self.simulated)))
        self._simulated_runs: set[str] = set()
        self.engine = Engine(
            self.config.engine,
            clock=clock,
            emit=self._emit,
            journal=journal,
            secrets=secrets or EnvSecrets(self.config.secrets_dir),
            http=http,
            wait_for_approval=wait_for_approval,
            resolve=self.library.get,
            configured=self.resolver.config_values,
            handlers={"terraform": terraform_handler(plan_gate)},
        )
        self._inflight: set[str] = set()

    def _emit(self, event: Event) -> Any:
        # outcomes of a run whose effects are faked say so, step by step and for the action
        if isinstance(event, Outcome) and event.action_id.split("/", 1)[0] in \
                self._simulated_runs:
            event = event.model_copy(update={"simulated": True})
        return self.emit(event)

    def runbook_id(self, action: Action) -> str | None:
        """The runbook an action names (metric labels; `verify` decides whether it may run)."""
        return action.runbook or self.config.runbooks.get(action.action_type)

    def variables(self, action: Action, resolved: ResolvedAction, runbook: Runbook
                  ) -> dict[str, Any]:
        """The `${var}` context: configured endpoints/credentials/webhooks, the variables the
        gate approved (re-resolved here), then the action's own identity."""
        return {
            **self.resolver.config_values(runbook),
            **resolved.variables,
            "resource_id": action.resource_id,
            "action_id": action.action_id,
            "action_type": action.action_type,
            "decision_id": action.decision_id,
            "dry_run": action.dry_run,
        }

    async def handle(self, action: Action) -> WorkflowResult:
        """Run an action at most once: skip finished ids, resume interrupted ones."""
        aid = action.action_id
        entry = await self.journal.get(aid)
        if aid in self._inflight or (entry is not None and entry.done):
            return await self._skipped(action, "already executed" if entry else "in progress")
        self._inflight.add(aid)
        try:
            return await self._run(action, entry)
        finally:
            self._inflight.discard(aid)
            self._simulated_runs.discard(aid)

    async def _run(self, action: Action, entry: JournalEntry | None) -> WorkflowResult:
        rid = action.runbook or ""
        try:
            # fail closed: run only what resolution here gives for exactly what the gate approved
            resolved = self.resolver.verify(
                action.action_type, action.runbook, action.runbook_hash, action.params
            )
            if resolved.runbook_id is None:
                return await self._skipped(action, f"no runbook for action type "
                                                   f"{action.action_type}")
            rid = resolved.runbook_id
            runbook = self.library.get(rid)
            if rid in self.simulated:
                self._simulated_runs.add(action.action_id)
            return await self.engine.run(
                runbook,
                self.variables(action, resolved, runbook),
                parent=action,
                action_id=action.action_id,
                resume=entry,
                dry_run=action.dry_run,
            )
        except (KeyError, ValidationError, RefusedAction) as exc:
            return await self._rejected(action, rid, exc)

    async def _skipped(self, action: Action, reason: str) -> WorkflowResult:
        await self._report(action, "skipped", output={"reason": reason})
        return WorkflowResult(action.action_id, self.runbook_id(action) or "", "skipped")

    async def _rejected(self, action: Action, rid: str, exc: Exception) -> WorkflowResult:
        # refused before any step: record it finished so a redelivery does not try again
        message = exc.args[0] if isinstance(exc, KeyError) and exc.args else str(exc)
        await self.journal.record(action.action_id, WORKFLOW, "started")
        await self.journal.record(action.action_id, WORKFLOW, "finished")
        await self._report(action, "failed", error=f"rejected: {message}", output={"runbook": rid})
        return WorkflowResult(action.action_id, rid, "rejected", error=str(message))

    async def _report(self, action: Action, status: str, **fields: Any) -> None:
        event = Outcome.caused_by(
            action,
            source=self.config.engine.source,
            action_id=action.action_id,
            scope="action",
            status=status,
            resource_id=action.resource_id,
            action_type=action.action_type,
            **fields,
        )
        await emit_event(self.emit, event)

    async def aclose(self) -> None:
        """Close the engine's HTTP client."""
        await self.engine.aclose()
