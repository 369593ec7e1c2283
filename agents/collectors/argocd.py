"""ArgoCD application status as telemetry: one MetricSample per application per poll.

The sample's `resource_id` is the application name and its `resource_type` is
`argocd_application`; the states are `labels` (sync_status, health_status, revision, operation
phase) and the numbers the deploy watch and dashboards use are `extra`: `synced`, `healthy`,
`degraded`, `progressing` (0/1), `history_id` (the id of the latest deployment: it changes on
every sync or rollback) and `deployed_at` (epoch seconds of that deployment).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from schemas import MetricSample

__all__ = ["APP_TYPE", "app_sample"]

APP_TYPE = "argocd_application"
SOURCE = "novacron.collect.argocd"


def _epoch(text: Any) -> float | None:
    if not isinstance(text, str):
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def _label(value: Any) -> str:
    return str(value)[:128] if value not in (None, "") else "unknown"


def app_sample(app: dict[str, Any], cluster: str = "default") -> MetricSample:
    """The sample of one Application object (as GET /api/v1/applications/{name} returns it)."""
    status = app.get("status") or {}
    sync = str((status.get("sync") or {}).get("status") or "Unknown")
    health = str((status.get("health") or {}).get("status") or "Unknown")
    history = [h for h in status.get("history") or [] if isinstance(h, dict)]
    latest = history[-1] if history else {}
    extra = {"synced": float(sync == "Synced"), "healthy": float(health == "Healthy"),
             "degraded": float(health == "Degraded"),
             "progressing": float(health == "Progressing")}
    if isinstance(latest.get("id"), int | float):
        extra["history_id"] = float(latest["id"])
    if (at := _epoch(latest.get("deployedAt"))) is not None:
        extra["deployed_at"] = at
    return MetricSample(
        source=SOURCE, resource_id=str((app.get("metadata") or {}).get("name") or "?")[:256],
        resource_type=APP_TYPE, cluster=cluster[:128], extra=extra,
        labels={"sync_status": _label(sync), "health_status": _label(health),
                "revision": _label((status.get("sync") or {}).get("revision")),
                "operation_phase": _label((status.get("operationState") or {}).get("phase"))})
