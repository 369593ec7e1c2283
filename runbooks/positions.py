"""Where a step uses a `${var}` as an endpoint, credential, webhook, code or path, not as data."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any, Protocol

from runbooks.interpolate import VAR

__all__ = ["SensitiveUse", "StepView", "sensitive_uses"]

SensitiveUse = tuple[str, str, str]
"""(variable, kind, where): kind is endpoint, credential, webhook or code."""


class StepView(Protocol):
    """The fields of a step that the checks here read; `runbooks.model.Step` has them.

    A protocol rather than the model itself, so the model can run these checks in its own
    validators without the two modules importing each other.
    """

    @property
    def id(self) -> str: ...
    @property
    def kind(self) -> str: ...
    @property
    def action(self) -> str | list[str] | None: ...
    @property
    def parameters(self) -> dict[str, Any]: ...


_AUTHORITY = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://[^/?#]*")
_SECRET_HEADER = re.compile(r"auth|token|key|cookie|secret|signature", re.IGNORECASE)


def _vars(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        for m in VAR.finditer(value):
            if not m.group(1):  # ${secret:…} comes from the secret store, never from events
                yield m.group(2)
    elif isinstance(value, dict):
        for item in value.values():
            yield from _vars(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _vars(item)


def url_host_vars(template: str) -> list[str]:
    """Variables that decide a URL's scheme, host or port (not its path or query)."""
    if template.startswith("${"):
        return list(_vars(template[: template.index("}") + 1]))
    match = _AUTHORITY.match(template)
    return list(_vars(match.group(0))) if match else []


def sensitive_uses(step: StepView) -> list[SensitiveUse]:
    """Every variable the step puts where a value would choose a target, a secret or code."""
    params, kind = step.parameters, step.kind
    uses: list[SensitiveUse] = []
    if kind == "http":
        url = str(step.action or params.get("url", ""))
        uses += [(v, "endpoint", "URL host") for v in url_host_vars(url)]
    if kind == "notification":
        uses += [(v, "webhook", "parameters.webhook_url") for v in _vars(params.get("webhook_url"))]
    if kind == "argocd":
        uses += [(v, "endpoint", "parameters.server") for v in _vars(params.get("server"))]
        uses += [(v, "credential", "parameters.token") for v in _vars(params.get("token"))]
    headers = params.get("headers") if kind in ("http", "notification") else None
    for name, value in (headers or {}).items() if isinstance(headers, dict) else ():
        if _SECRET_HEADER.search(str(name)):
            uses += [(v, "credential", f"header {name}") for v in _vars(value)]
    if kind == "workflow":
        target = step.action or params.get("runbook")
        uses += [(v, "code", "sub-workflow runbook id") for v in _vars(target)]
    if kind == "kafka":
        uses += [(v, "code", "event type") for v in _vars(params.get("event_type", step.action))]
    uses += _effector_uses(kind, params)
    if kind == "command":
        uses += [(v, "code", "parameters.cwd") for v in _vars(params.get("cwd"))]
        uses += [(v, "code", "parameters.env") for v in _vars(params.get("env"))]
    return uses


_EFFECTOR_TARGETS: dict[str, dict[str, str]] = {
    "git": {"repo": "endpoint", "repositories": "endpoint", "branch": "code", "file": "code",
            "review": "code", "step": "code"},
    "terraform": {"dir": "endpoint", "targets": "code", "allow_destroy": "code",
                  "refresh": "code"},
    "kubernetes": {"namespace": "code", "kind": "code", "name": "code"},
    "aws": {"group": "code", "group_id": "code", "bucket": "code", "kms_key_id": "code"},
}
"""Per effector: parameters that choose the target (its repository, directory, object)."""


def _effector_uses(kind: str, params: dict[str, Any]) -> list[SensitiveUse]:
    return [(v, what, f"parameters.{name}")
            for name, what in _EFFECTOR_TARGETS.get(kind, {}).items()
            for v in _vars(params.get(name))]
