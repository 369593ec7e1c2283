"""`kubernetes` steps: scale (scale subresource), rollout restart and strategic-merge patch.

    action: scale | restart | patch
    parameters:
      namespace: ${k8s_namespace}   # fixed (configuration), a DNS label
      kind:      deployment         # deployment | statefulset
      name:      ${resource_id}     # a DNS-1123 name
      replicas:  ${replicas}        # scale: the new count, or
      add:       ${delta}           # scale: added to the current count, or
      remove:    ${delta}           # scale: taken from it
      minimum: 1, maximum: 50       # scale: bounds of the result
      patch:     {spec: {template: {metadata: {labels: {tier: ${tier}}}}}}   # patch

Calls (official `kubernetes` client, in-cluster service account or kubeconfig):
GET/PATCH .../{kind}s/{name}/scale (merge patch `{"spec": {"replicas": n}}`); rollout restart is
a strategic-merge PATCH of `spec.template.metadata.annotations["kubectl.kubernetes.io/
restartedAt"]`, as `kubectl rollout restart` does; patch is a strategic-merge PATCH whose shape
comes from the runbook and whose values are typed scalars (event JSON is never merged in).
Post-condition: the object is read back and must hold the change, else the step fails with
what it observed.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from runbooks.effectors import KubernetesConfig
from runbooks.interpolate import VAR
from runbooks.runtime import StepContext
from runbooks.steps.gitrepo import PostConditionFailed
from schemas.errors import BackendUnavailable, NonRetryableError, RetryableError

__all__ = ["KUBERNETES_ACTIONS", "RESTARTED_AT", "api_client", "run_kubernetes", "wanted_count"]

KUBERNETES_ACTIONS = frozenset({"scale", "restart", "patch"})
"""What a kubernetes step can do (its `action`)."""
RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"
"""The pod-template annotation whose change rolls a workload (kubectl rollout restart)."""
_NAME = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_KINDS = {"deployment": "deployment", "statefulset": "stateful_set"}
_MERGE = "application/merge-patch+json"
_STRATEGIC = "application/strategic-merge-patch+json"


def api_client(config: KubernetesConfig) -> Any:
    """An ApiClient: kubeconfig if configured, else in-cluster in a pod, else ~/.kube/config."""
    import os

    from kubernetes import client
    from kubernetes import config as kube

    if config.kubeconfig is None and os.environ.get("KUBERNETES_SERVICE_HOST"):
        conf = client.Configuration()
        kube.load_incluster_config(client_configuration=conf)
        return client.ApiClient(conf)
    path = str(config.kubeconfig) if config.kubeconfig else None
    return kube.new_client_from_config(config_file=path, context=config.context,
                                       persist_config=False)


class _Target:
    """The workload a step acts on, and the calls it needs."""

    def __init__(self, ctx: StepContext, apps: Any) -> None:
        self.namespace = str(ctx.param("namespace") or "default")
        self.name = str(ctx.param("name") or "")
        kind = str(ctx.param("kind") or "deployment").lower()
        if kind not in _KINDS:
            raise NonRetryableError(f"step {ctx.step.id}: kind {kind!r} is not one of "
                                    f"{sorted(_KINDS)}")
        if not (_LABEL.fullmatch(self.namespace) and len(self.namespace) <= 63):
            raise NonRetryableError(f"step {ctx.step.id}: {self.namespace[:80]!r} is not a "
                                    "namespace name")
        if not (_NAME.fullmatch(self.name) and len(self.name) <= 253):
            raise NonRetryableError(f"step {ctx.step.id}: {ctx.redactor.text(self.name)[:80]!r}"
                                    " is not a Kubernetes object name")
        self.kind, self.apps = _KINDS[kind], apps
        self.timeout = ctx.config.effectors.kubernetes.timeout

    def call(self, verb: str, scale: bool, body: Any = None, content: str | None = None) -> Any:
        suffix = "_scale" if scale else ""
        method = getattr(self.apps, f"{verb}_namespaced_{self.kind}{suffix}")
        kwargs: dict[str, Any] = {"_request_timeout": self.timeout}
        if body is not None:
            kwargs.update(body=body, _content_type=content)
        obj = method(self.name, self.namespace, **kwargs)
        return self.apps.api_client.sanitize_for_serialization(obj)


async def _call(ctx: StepContext, fn: Callable[[], Any]) -> Any:
    from kubernetes.client.exceptions import ApiException
    from urllib3.exceptions import HTTPError

    try:
        return await asyncio.to_thread(fn)
    except ApiException as exc:
        what = f"step {ctx.step.id}: Kubernetes API {exc.status} {exc.reason}: " \
               f"{ctx.clip(str(exc.body or ''))[:500]}"
        if exc.status in (429, 500, 502, 503, 504):
            raise RetryableError(what) from exc
        raise NonRetryableError(what) from exc
    except HTTPError as exc:
        raise BackendUnavailable(f"step {ctx.step.id}: Kubernetes API unreachable: "
                                 f"{type(exc).__name__}") from exc


def _int(value: Any, what: str, ctx: StepContext) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise NonRetryableError(f"step {ctx.step.id}: {what} must be an integer, not {value!r}")
    return value


def wanted_count(ctx: StepContext, current: int, absolute: str) -> int:
    """The new count: `absolute` (replicas / capacity), else current + `add` or − `remove`."""
    if ctx.param(absolute) is not None:
        return _int(ctx.param(absolute), absolute, ctx)
    for name, sign in (("add", 1), ("remove", -1)):
        if ctx.param(name) is not None:
            step = _int(ctx.param(name), name, ctx)
            if step < 0:
                raise NonRetryableError(f"step {ctx.step.id}: {name} must not be negative")
            return current + sign * step
    raise NonRetryableError(f"step {ctx.step.id}: scale needs {absolute}, add or remove")


_wanted = wanted_count


async def _scale(ctx: StepContext, target: _Target) -> dict[str, Any]:
    before = await _call(ctx, lambda: target.call("read", True))
    current = int((before.get("spec") or {}).get("replicas") or 0)
    wanted = _wanted(ctx, current, "replicas")
    low, high = ctx.param("minimum", 0), ctx.param("maximum")
    if wanted < low or (high is not None and wanted > high):
        raise NonRetryableError(f"step {ctx.step.id}: {target.name} would have {wanted} "
                                f"replicas, outside [{low}, {high if high is not None else '∞'}]")
    body = {"spec": {"replicas": wanted}}
    await _call(ctx, lambda: target.call("patch", True, body, _MERGE))
    after = await _call(ctx, lambda: target.call("read", True))
    observed = (after.get("spec") or {}).get("replicas")
    out = {"operation": "scale", "name": target.name, "from": current, "to": wanted,
           "observed": {"spec.replicas": observed}}
    if observed != wanted:
        raise PostConditionFailed(f"step {ctx.step.id}: {target.name} spec.replicas is "
                                  f"{observed} after the patch, expected {wanted}")
    return {**out, "verified": True}


def _annotations(obj: Mapping[str, Any]) -> dict[str, Any]:
    template = (obj.get("spec") or {}).get("template") or {}
    return dict((template.get("metadata") or {}).get("annotations") or {})


async def _restart(ctx: StepContext, target: _Target) -> dict[str, Any]:
    # microseconds (kubectl writes seconds): two restarts never share a stamp, so the read-back
    # proves this patch landed
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    body = {"spec": {"template": {"metadata": {"annotations": {RESTARTED_AT: stamp}}}}}
    await _call(ctx, lambda: target.call("patch", False, body, _STRATEGIC))
    after = await _call(ctx, lambda: target.call("read", False))
    observed = _annotations(after).get(RESTARTED_AT)
    if observed != stamp:
        raise PostConditionFailed(f"step {ctx.step.id}: {target.name} pod template "
                                  f"{RESTARTED_AT} is {observed!r}, expected {stamp!r}")
    return {"operation": "restart", "name": target.name, "restarted_at": stamp,
            "verified": True}


def _typed_patch(template: Any, ctx: StepContext) -> Any:
    """The patch: the runbook's shape, each `${var}` a typed scalar (never an object)."""
    if isinstance(template, Mapping):
        return {str(k): _typed_patch(v, ctx) for k, v in template.items()}
    if isinstance(template, list):
        return [_typed_patch(v, ctx) for v in template]
    if isinstance(template, str) and VAR.fullmatch(template):
        value = ctx.interp.value(template)
        if isinstance(value, Mapping | list):
            raise NonRetryableError(f"step {ctx.step.id}: {template} is structured data; a "
                                    "patch takes only typed scalar values from variables")
        return value
    return ctx.interp.value(template)


def _missing(patch: Any, live: Any, path: str = "") -> list[str]:
    """Where the live object does not hold a patch value (lists matched by `name`)."""
    if isinstance(patch, Mapping):
        if not isinstance(live, Mapping):
            return [path or "/"]
        return [m for k, v in patch.items() if not str(k).startswith("$")
                for m in _missing(v, live.get(k), f"{path}/{k}")]
    if isinstance(patch, list) and all(isinstance(i, Mapping) and "name" in i for i in patch):
        by_name = {i.get("name"): i for i in live or [] if isinstance(i, Mapping)}
        return [m for i in patch for m in _missing(i, by_name.get(i["name"]),
                                                   f"{path}[{i['name']}]")]
    return [] if patch == live else [path]


async def _patch(ctx: StepContext, target: _Target) -> dict[str, Any]:
    body = _typed_patch(ctx.step.parameters.get("patch") or {}, ctx)
    if not isinstance(body, Mapping) or not body:
        raise NonRetryableError(f"step {ctx.step.id}: patch needs parameters.patch (a mapping)")
    await _call(ctx, lambda: target.call("patch", False, body, _STRATEGIC))
    after = await _call(ctx, lambda: target.call("read", False))
    wrong = _missing(body, after)
    if wrong:
        raise PostConditionFailed(f"step {ctx.step.id}: {target.name} does not hold the patch "
                                  f"at {', '.join(wrong[:10])} after it was accepted")
    return {"operation": "patch", "name": target.name, "verified": True}


async def run_kubernetes(ctx: StepContext) -> dict[str, Any]:
    """Scale, restart or patch a workload and read it back."""
    from kubernetes import client

    op = str(ctx.step.action or "")
    if op not in KUBERNETES_ACTIONS:
        raise NonRetryableError(f"step {ctx.step.id}: unknown kubernetes action {op!r}")
    try:
        api = await asyncio.to_thread(api_client, ctx.config.effectors.kubernetes)
    except Exception as exc:  # no kubeconfig, a broken one, no service account
        raise NonRetryableError(f"step {ctx.step.id}: no usable Kubernetes credentials: "
                                f"{type(exc).__name__}: {str(exc)[:300]}") from exc
    try:
        target = _Target(ctx, client.AppsV1Api(api))
        runner = {"scale": _scale, "restart": _restart, "patch": _patch}[op]
        return await runner(ctx, target)
    finally:
        api.close()
