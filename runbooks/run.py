"""One workflow run: DAG scheduling, retries, timeouts, saga compensation, SLA, journal, outcomes.

Resume rule (after a crash, from the journal): finished steps are not run again; a step that was
`started` but never finished is re-run only if it is marked `idempotent`; otherwise it fails with
"interrupted" (its effect is unknown) and, like any failed step, fails the workflow if critical,
in which case its own compensation runs first, then those of the completed steps in reverse order.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from runbooks.conditions import evaluate
from runbooks.interpolate import Interpolator, Redactor
from runbooks.journal import WORKFLOW, JournalEntry
from runbooks.model import Runbook, Step
from runbooks.results import StepResult, WorkflowResult
from runbooks.runtime import RunHost, StepContext, emit_event
from runbooks.steps.control import ApprovalTimeout
from runbooks.timing import backoff_delay
from runbooks.urls import base_names, render_url
from runbooks.verdict import missed, verdict
from schemas import Event, Outcome
from schemas.errors import NonRetryableError, RetryableError

__all__ = ["WorkflowRun", "classify"]

INTERRUPTED = "interrupted by a restart while running; not idempotent, so its effect is unknown"


def classify(exc: BaseException) -> tuple[str, bool]:
    """(status, retryable) of a failed attempt."""
    if isinstance(exc, ApprovalTimeout):
        return "timed_out", False
    if isinstance(exc, TimeoutError):
        return "timed_out", True
    if isinstance(exc, RetryableError | httpx.TransportError):
        return "failed", True
    return "failed", False  # NonRetryable, Rejected, unknown errors: fail fast, never guess


class WorkflowRun:
    """State of one execution of one runbook for one action id."""

    def __init__(
        self,
        engine: RunHost,
        runbook: Runbook,
        variables: dict[str, Any],
        parent: Event,
        action_id: str,
        resume: JournalEntry | None,
        depth: int,
        redactor: Redactor,
    ) -> None:
        self.e = engine
        self.runbook = runbook
        self.vars = variables
        self.parent = parent
        self.action_id = action_id
        self.prior = resume or JournalEntry(action_id)
        self.depth = depth
        self.redactor = redactor
        self.interp = Interpolator(variables, engine.secrets, redactor,
                                   base_names(runbook.declared))
        self._steps = {s.id: s for s in runbook.steps}
        self.results: dict[str, StepResult] = {}
        self.completed: list[str] = [s for s in self.prior.finished_order if self._known(s)]
        self.failed_critical: str | None = None
        self.cause: StepResult | None = (
            None  # the failed critical step's result, kept for the verdict
        )
        self.sla_breached = False
        limit = min(engine.config.max_parallel, runbook.max_parallel or engine.config.max_parallel)
        self.sem = asyncio.Semaphore(limit)

    def _known(self, step_id: str) -> bool:
        return step_id in {s.id for s in self.runbook.steps}

    # events --------------------------------------------------------------------------------
    async def _outcome(self, status: str, step: Step | None = None, **fields: Any) -> None:
        if "error" in fields and fields["error"] is not None:
            fields["error"] = self.redactor.text(str(fields["error"]))[:8192]
        if "output" in fields:
            fields["output"] = self.redactor.value(fields["output"])
        event = Outcome.caused_by(
            self.parent,
            source=self.e.config.source,
            action_id=self.action_id,
            scope="step" if step else "action",
            step_id=step.id if step else None,
            status=status,
            resource_id=str(getattr(self.parent, "resource_id", "")),
            action_type=str(getattr(self.parent, "action_type", "")),
            **fields,
        )
        await emit_event(self.e.emit, event)

    # the whole run ---------------------------------------------------------------------------
    async def execute(self, dry_run: bool = False) -> WorkflowResult:
        resumed = self.prior.workflow == "started"
        if not resumed:
            await self.e.journal.record(self.action_id, WORKFLOW, "started")
        await self._outcome("started", output={"runbook": self.runbook.id, "resumed": resumed})
        t0 = self.e.clock.now()
        sla = asyncio.ensure_future(self._watch_sla()) if self.runbook.sla else None
        try:
            if dry_run:
                await self._plan()
            elif not self._resume_into_compensation():
                await self._dag()
            compensated, comp_failed = (
                await self._compensate() if self.failed_critical else ([], [])
            )
        finally:
            if sla is not None:
                sla.cancel()
        status, error = self._verdict(compensated, comp_failed, dry_run)
        # the final outcome goes out before the journal says "finished": a crash in between
        # repeats the (idempotent) outcome on redelivery instead of losing it
        await self._outcome(
            status,
            duration_ms=(self.e.clock.now() - t0) * 1000,
            error=error,
            output={
                "runbook": self.runbook.id,
                "compensated": compensated,
                "steps": {k: v.status for k, v in self.results.items()},
                "failed_steps": sorted(missed(self.results)),
            },
        )
        await self.e.journal.record(self.action_id, WORKFLOW, "finished")
        return WorkflowResult(
            self.action_id,
            self.runbook.id,
            status,
            self.results,
            error and self.redactor.text(error),
            self.sla_breached,
            compensated,
            resumed,
        )

    def _verdict(self, compensated: list[str], comp_failed: list[str], dry_run: bool) -> tuple:
        if dry_run:
            return "skipped", None
        return verdict(self.results, self.failed_critical, self.cause, compensated, comp_failed)

    async def _watch_sla(self) -> None:
        assert self.runbook.sla is not None
        await self.e.clock.sleep(self.runbook.sla)
        self.sla_breached = True
        running = [s.id for s in self.runbook.steps if s.id not in self.results]
        await self._outcome("sla_breached", output={"sla_s": self.runbook.sla, "pending": running})

    def _resume_into_compensation(self) -> bool:
        # a crash during compensation: the critical failure is in the journal, go straight back
        for sid, state in self.prior.steps.items():
            if state == "failed" and self._known(sid) and self.runbook.step(sid).critical:
                self.failed_critical = sid
                self.cause = self._result(sid, "failed", error="failed before the restart")
                self.results[sid] = self.cause
                return True
        return False

    async def _plan(self) -> None:
        for step in self.runbook.steps:
            plan: dict[str, Any] = {"action_type": step.kind}
            if step.argv:
                plan["argv"] = [self.interp.text(a) for a in step.argv]
            elif step.kind == "http":  # the URL exactly as it would be requested
                plan["url"] = self._planned_url(str(step.action or step.parameters.get("url")))
            elif step.action is not None:
                plan["action"] = self.interp.value(step.action)
            self.results[step.id] = self._result(step.id, "skipped", output={"plan": plan})
            await self._outcome("skipped", step, output={"dry_run": True, "plan": plan})

    def _planned_url(self, template: str) -> str:
        try:
            return render_url(self.interp, template, self.interp.url_bases)
        except NonRetryableError as exc:
            return f"(refused: {exc})"

    # scheduling -------------------------------------------------------------------------------
    async def _dag(self) -> None:
        # Kahn's algorithm with in-degree counters: O(steps + edges) bookkeeping per run
        pending = {s.id: len(s.dependencies) for s in self.runbook.steps}
        dependents: dict[str, list[str]] = {s.id: [] for s in self.runbook.steps}
        for s in self.runbook.steps:
            for dep in s.dependencies:
                dependents[dep].append(s.id)
        ready = [sid for sid, n in pending.items() if n == 0]
        running: dict[asyncio.Future[None], str] = {}
        try:
            while ready or running:
                for sid in ready:
                    running[asyncio.ensure_future(self._node(self._steps[sid]))] = sid
                ready = []
                done, _ = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
                for fut in done:
                    finished = running.pop(fut)
                    fut.result()
                    for nxt in dependents[finished]:
                        pending[nxt] -= 1
                        if pending[nxt] == 0:
                            ready.append(nxt)
        finally:
            for fut in running:  # shutdown or a bug: do not leave steps running unowned
                fut.cancel()

    async def _node(self, step: Step) -> None:
        prior = self.prior.steps.get(step.id)
        if prior in ("finished", "compensated"):
            self.results[step.id] = self._result(step.id, "succeeded", output={"resumed": True})
            return
        reason = self._skip_reason(step, prior)
        if reason is not None:
            await self._finish(step, self._result(step.id, "skipped", output={"reason": reason}))
            return
        if prior == "failed" or (prior == "started" and not step.idempotent):
            await self._interrupted(step, prior)
            return
        if prior is None:
            await self.e.journal.record(self.action_id, step.id, "started")  # before the effect
        async with self.sem:
            result = await self._attempts(step)
        await self.e.journal.record(
            self.action_id, step.id, "finished" if result.status == "succeeded" else "failed"
        )
        if result.status == "succeeded":
            self.completed.append(step.id)
        await self._finish(step, result)

    def _skip_reason(self, step: Step, prior: str | None) -> str | None:
        if self.failed_critical is not None and prior is None:
            return f"workflow failed at {self.failed_critical}"
        bad = [d for d in step.dependencies if not self._satisfied(self.results[d])]
        if bad:
            return f"dependency {bad[0]} {self.results[bad[0]].status}"
        if step.when and not evaluate(step.when, self._scope()):
            return f"condition false: {step.when}"
        return None

    @staticmethod
    def _satisfied(dep: StepResult) -> bool:
        # like Argo's DAG: a dependency skipped by its own `when` counts as done
        reason = str(dep.output.get("reason", ""))
        return dep.status == "succeeded" or (dep.status == "skipped" and reason.startswith("cond"))

    def _scope(self) -> dict[str, Any]:
        steps = {k: {"status": r.status, "output": r.output} for k, r in self.results.items()}
        return {**self.vars, "steps": steps}

    async def _interrupted(self, step: Step, prior: str | None) -> None:
        error = INTERRUPTED if prior == "started" else "failed before the restart"
        if prior == "started":
            await self.e.journal.record(self.action_id, step.id, "failed")
            self.completed.append(step.id)  # its effect may have happened: compensate it first
        await self._finish(step, self._result(step.id, "failed", error=error))

    async def _finish(self, step: Step, result: StepResult) -> None:
        self.results[step.id] = result
        dependency_failed = result.status == "skipped" and "dependency" in str(
            result.output.get("reason", "")
        )
        if step.critical and (result.status in ("failed", "timed_out") or dependency_failed):
            if self.failed_critical is None:
                self.failed_critical, self.cause = step.id, result
        await self._outcome(
            result.status,
            step,
            attempt=max(result.attempts, 1),
            error=result.error,
            duration_ms=result.duration_ms,
            output=result.output,
        )

    def _result(self, sid: str, status: str, **kw: Any) -> StepResult:
        return StepResult(sid, status, **kw)

    # one step, with retries ------------------------------------------------------------------
    async def _attempts(self, step: Step) -> StepResult:
        policy = step.policy
        t_start = self.e.clock.now()
        for attempt in range(1, policy.max_attempts + 1):
            await self._outcome("started", step, attempt=attempt)
            try:
                output = await self._call(step, attempt)
            except (Exception, asyncio.CancelledError) as exc:
                if isinstance(exc, asyncio.CancelledError):
                    raise
                status, retryable = classify(exc)
                error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
                if retryable and attempt < policy.max_attempts:
                    delay = backoff_delay(policy, attempt, self.e.rng)
                    await self._outcome(
                        status,
                        step,
                        attempt=attempt,
                        error=error,
                        output={"retry_in_s": round(delay, 6)},
                    )
                    await self.e.clock.sleep(delay)
                    continue
                return self._result(
                    step.id,
                    status,
                    attempts=attempt,
                    error=error,
                    duration_ms=(self.e.clock.now() - t_start) * 1000,
                )
            return self._result(
                step.id,
                "succeeded",
                attempts=attempt,
                output=output,
                duration_ms=(self.e.clock.now() - t_start) * 1000,
            )
        raise AssertionError("unreachable")  # pragma: no cover

    async def _call(self, step: Step, attempt: int) -> dict[str, Any]:
        handler = self.e.handlers[step.kind]
        ctx = self._context(step, attempt)
        if step.timeout is None or step.kind == "approval":  # approvals carry their own timeout
            return await handler(ctx)
        return await self._with_timeout(handler(ctx), step.timeout)

    async def _with_timeout(self, coro: Any, seconds: float) -> dict[str, Any]:
        # raced against the injected clock, so timeouts are testable under virtual time too
        work = asyncio.ensure_future(coro)
        timer = asyncio.ensure_future(self.e.clock.sleep(seconds))
        try:
            await asyncio.wait({work, timer}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            timer.cancel()
        if work.done():
            return work.result()  # type: ignore[no-any-return]
        work.cancel()
        await asyncio.gather(work, return_exceptions=True)  # let the handler clean up (kill)
        raise TimeoutError(f"no result within {seconds:g}s")

    def _context(self, step: Step, attempt: int) -> StepContext:
        async def child(runbook_id: str, variables: dict[str, Any], child_id: str) -> Any:
            return await self.e.run_child(runbook_id, variables, child_id, self.parent,
                                          self.depth + 1, inherited=self.vars)

        return StepContext(
            step=step,
            attempt=attempt,
            action_id=self.action_id,
            parent=self.parent,
            interp=self.interp,
            redactor=self.redactor,
            config=self.e.config,
            clock=self.e.clock,
            emit=self.e.emit,
            http_factory=lambda: self.e.http,
            secrets=self.e.secrets,
            wait_for_approval=self.e.wait_for_approval,
            run_child=child,
        )

    # saga -------------------------------------------------------------------------------------
    async def _compensate(self) -> tuple[list[str], list[str]]:
        done: list[str] = []
        failed: list[str] = []
        for sid in reversed(self.completed):
            if self.prior.steps.get(sid) == "compensated":
                done.append(sid)
                continue
            comp = self.runbook.step(sid).compensation_step()
            if comp is None:
                continue
            await self.e.journal.record(self.action_id, comp.id, "started")
            result = await self._attempts(comp)
            if result.status == "succeeded":
                await self.e.journal.record(self.action_id, sid, "compensated")
                self.results[sid] = self._result(sid, "compensated", output=result.output)
                await self._outcome("compensated", self.runbook.step(sid), attempt=result.attempts)
                done.append(sid)
            else:
                await self.e.journal.record(self.action_id, comp.id, "failed")
                await self._outcome(
                    result.status, comp, attempt=result.attempts, error=result.error
                )
                failed.append(sid)
        return done, failed
