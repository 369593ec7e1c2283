"""Control steps: kafka (emit an event), approval, sub-workflow, noop and sleep."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pydantic

from runbooks.runtime import StepContext, emit_event
from schemas import EVENT_TYPES, Approval, Outcome, utc_now
from schemas.errors import NonRetryableError

__all__ = ["ApprovalTimeout", "run_approval", "run_kafka", "run_noop", "run_sleep", "run_workflow"]


class ApprovalTimeout(NonRetryableError):
    """Nobody approved or rejected in time."""


async def run_noop(ctx: StepContext) -> dict[str, Any]:
    """Do nothing (placeholders, benchmarks)."""
    return {}


async def run_sleep(ctx: StepContext) -> dict[str, Any]:
    """Wait `parameters.seconds` on the engine's clock."""
    seconds = float(ctx.param("seconds", ctx.step.action or 0))
    await ctx.clock.sleep(seconds)
    return {"slept": seconds}


async def run_kafka(ctx: StepContext) -> dict[str, Any]:
    """Emit `parameters.event_type` built from `parameters.fields`, in the action's chain."""
    name = str(ctx.param("event_type", ctx.step.action or ""))
    cls = EVENT_TYPES.get(name)
    if cls is None:
        raise NonRetryableError(f"step {ctx.step.id}: unknown event type {name!r}")
    fields = dict(ctx.param("fields") or {})
    fields.setdefault("source", ctx.config.source)
    try:
        event = cls.caused_by(ctx.parent, **fields)
    except pydantic.ValidationError as exc:
        raise NonRetryableError(f"step {ctx.step.id}: invalid {name}: {exc.errors()[:3]}") from exc
    await emit_event(ctx.emit, event)
    return {"event_type": name, "event_id": event.event_id}


async def run_approval(ctx: StepContext) -> dict[str, Any]:
    """Ask for approval (emit a pending Approval) and wait for the answer or the timeout."""
    if ctx.wait_for_approval is None:
        raise NonRetryableError(f"step {ctx.step.id}: no approval channel configured")
    request_id = f"{ctx.action_id}:{ctx.step.id}"
    timeout = float(ctx.param("timeout", ctx.step.timeout or ctx.config.approval_timeout))
    pending = Approval.caused_by(
        ctx.parent,
        source=ctx.config.source,
        request_id=request_id,
        status="pending",
        reason=ctx.interp.text(str(ctx.step.action or ctx.step.name or "")),
        expires_at=utc_now() + timedelta(seconds=timeout),
        resource_id=str(getattr(ctx.parent, "resource_id", "")),
    )
    waiting = Outcome.caused_by(
        ctx.parent,
        source=ctx.config.source,
        action_id=ctx.action_id,
        scope="step",
        step_id=ctx.step.id,
        status="waiting_approval",
        attempt=ctx.attempt,
        output={"request_id": request_id, "timeout_s": timeout},
    )
    await emit_event(ctx.emit, pending)
    await emit_event(ctx.emit, waiting)
    answer = await ctx.wait_for_approval(request_id, timeout)
    if answer == "approved":
        return {"request_id": request_id, "approval": answer}
    if answer == "rejected":
        raise NonRetryableError(f"step {ctx.step.id}: approval {request_id} rejected")
    raise ApprovalTimeout(f"step {ctx.step.id}: no approval for {request_id} within {timeout:g}s")


async def run_workflow(ctx: StepContext) -> dict[str, Any]:
    """Run another runbook as one step; its own steps are journaled under `<action>/<step>`."""
    runbook_id = ctx.interp.text(str(ctx.step.action or ctx.step.parameters.get("runbook", "")))
    variables = dict(ctx.param("variables") or {})
    result = await ctx.run_child(runbook_id, variables, f"{ctx.action_id}/{ctx.step.id}")
    if result.status not in ("succeeded", "skipped"):
        raise NonRetryableError(f"sub-workflow {runbook_id} {result.status}: {result.error or ''}")
    return {"runbook": runbook_id, "status": result.status}
