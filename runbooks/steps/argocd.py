"""ArgoCD steps: create, sync, status and rollback of an application through its REST API.

Endpoints (argo-cd ApplicationService, bearer token auth):
    POST /api/v1/applications                       create   (body: Application)
    POST /api/v1/applications/{name}/sync           sync     (ApplicationSyncRequest)
    GET  /api/v1/applications/{name}                status
    PUT  /api/v1/applications/{name}/rollback       rollback (ApplicationRollbackRequest, {"id": N})

A rollback without `id` (or with 0) reads the application first and rolls back to the previous
revision of `.status.history` (`previous_history_id`), so no one has to look the id up.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from runbooks.runtime import StepContext
from runbooks.steps.web import render_url, request
from schemas.errors import NonRetryableError, RetryableError

__all__ = ["ARGOCD_ACTIONS", "app_status", "previous_history_id", "run_argocd"]

ARGOCD_ACTIONS = frozenset({"create", "sync", "status", "rollback"})
"""What an argocd step can do (its `action`)."""


def app_status(app: dict[str, Any]) -> dict[str, Any]:
    """The parts of an Application that matter to a runbook."""
    status = app.get("status") or {}
    history = status.get("history") or []
    return {
        "app": (app.get("metadata") or {}).get("name"),
        "sync_status": (status.get("sync") or {}).get("status"),
        "health_status": (status.get("health") or {}).get("status"),
        "revision": (status.get("sync") or {}).get("revision"),
        "operation_phase": (status.get("operationState") or {}).get("phase"),
        "history_ids": [h.get("id") for h in history],
    }


def previous_history_id(app: dict[str, Any]) -> int:
    """The history id of the revision deployed before the current one; NonRetryableError when
    the history holds no other revision (nothing to roll back to)."""
    status = app.get("status") or {}
    history = [h for h in status.get("history") or [] if isinstance(h, dict) and "id" in h]
    current = (status.get("sync") or {}).get("revision") or (history[-1].get("revision")
                                                              if history else None)
    for entry in reversed(history):
        if entry.get("revision") != current:
            return int(entry["id"])
    name = (app.get("metadata") or {}).get("name")
    raise NonRetryableError(f"application {name}: no earlier revision in its history to roll "
                            f"back to ({len(history)} entries, all at {current})")


def _target(ctx: StepContext) -> tuple[str, str, dict[str, str]]:
    server = render_url(ctx, str(ctx.step.parameters.get("server", "")))
    app = str(ctx.param("app", ""))
    if not app:
        raise NonRetryableError(f"step {ctx.step.id}: argocd needs parameters.app")
    headers = {"Accept": "application/json"}
    token = ctx.param("token")
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return f"{server.rstrip('/')}/api/v1/applications", quote(app, safe=""), headers


def _sync_body(ctx: StepContext, app: str) -> dict[str, Any]:
    body: dict[str, Any] = {"name": app, "prune": bool(ctx.param("prune", False))}
    body["dryRun"] = bool(ctx.param("dry_run", False))
    if ctx.param("revision"):
        body["revision"] = str(ctx.param("revision"))
    return body


def _check_expectations(ctx: StepContext, status: dict[str, Any]) -> None:
    # retryable: with a retry policy the step polls until the app reaches the state
    for key, param in (("health_status", "expect_health"), ("sync_status", "expect_sync")):
        want = ctx.param(param)
        if want and status[key] != want:
            raise RetryableError(
                f"application {status['app']}: {key} is {status[key]}, want {want}"
            )


async def run_argocd(ctx: StepContext) -> dict[str, Any]:
    """Run one ArgoCD operation; output is the application's sync/health status."""
    op = str(ctx.step.action or "status")
    base, app, headers = _target(ctx)
    if op == "create":
        spec = ctx.param("application") or {}
        resp = await request(ctx, "POST", base, json=spec, headers=headers)
    elif op == "sync":
        body = _sync_body(ctx, ctx.param("app"))
        resp = await request(ctx, "POST", f"{base}/{app}/sync", json=body, headers=headers)
    elif op == "rollback":
        target = ctx.param("id")
        if target in (None, "", 0, "0"):  # the previous revision, from the app's own history
            current = await request(ctx, "GET", f"{base}/{app}", headers=headers)
            target = previous_history_id(current.json())
        body = {"name": ctx.param("app"), "id": int(target),
                "prune": bool(ctx.param("prune", False))}
        resp = await request(ctx, "PUT", f"{base}/{app}/rollback", json=body, headers=headers)
    elif op == "status":
        resp = await request(ctx, "GET", f"{base}/{app}", headers=headers)
    else:
        raise NonRetryableError(f"step {ctx.step.id}: unknown argocd action {op!r}")
    status = app_status(resp.json())
    if op == "status":
        _check_expectations(ctx, status)
    rolled = {"rolled_back_to": body["id"]} if op == "rollback" else {}
    return {"operation": op, **status, **rolled}
