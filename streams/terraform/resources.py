"""The provider's resources: policies, runbooks, baselines, drift ignore rules, exceptions.

Each maps Terraform's create/read/update/delete/import onto the control API routes
(agents/control_api.py, agents/registry_api.py). Every failure becomes a diagnostic with what
the API said; nothing escapes as a stack trace. Read returns None when the object is gone
(deleted, disabled, withdrawn, revoked), so Terraform plans to create it again.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, ClassVar

from tf.iface import (  # type: ignore[import-not-found]
    CreateContext,
    DeleteContext,
    ImportContext,
    PlanContext,
    ReadContext,
    Resource,
    UpdateContext,
)
from tf.schema import Attribute, Schema  # type: ignore[import-not-found]
from tf.types import Bool, Number, String, Unknown  # type: ignore[import-not-found]

from policies.types import ENFORCEMENTS, POLICY_TYPES
from streams.terraform.attrs import CompactJson, check_choice, check_time, known, same_time
from streams.terraform.client import ApiError, ClientHolder, ControlApiClient

__all__ = ["RESOURCES"]

State = dict[str, Any]


class _Base(Resource):  # type: ignore[misc]
    """Shared plumbing: the client, diagnostics instead of exceptions, import by read."""

    name: ClassVar[str] = ""
    schema: ClassVar[Schema]
    volatile: ClassVar[tuple[str, ...]] = ()
    """Computed attributes an update changes (planned as unknown, then read back)."""

    def __init__(self, provider: ClientHolder) -> None:
        self.provider = provider

    @classmethod
    def get_name(cls) -> str:
        return cls.name

    @classmethod
    def get_schema(cls) -> Schema:
        return cls.schema

    def _guard(self, ctx: Any, action: str, fallback: Any, run: Callable[[ControlApiClient], Any]
               ) -> Any:
        client = self.provider.client
        if client is None:
            ctx.diagnostics.add_error("The novacron provider is not configured",
                                      "set endpoint and token in the provider block, or "
                                      "NOVACRON_API_URL and NOVACRON_API_TOKEN")
            return fallback
        try:
            return run(client)
        except ApiError as exc:
            ctx.diagnostics.add_error(f"Cannot {action} {ctx.type_name}: {exc.summary}",
                                      exc.detail)
        except Exception as exc:  # a bug here must still reach the user as a diagnostic
            ctx.diagnostics.add_error(f"Cannot {action} {ctx.type_name}",
                                      f"unexpected {type(exc).__name__}: {exc}")
        return fallback

    def upgrade(self, ctx: Any, version: int, old: State) -> State:
        return old  # one schema version so far: nothing to migrate

    def plan(self, ctx: PlanContext, current: State | None, planned: State) -> State:
        if current is not None and ctx.changed_fields - set(self.volatile):
            for key in self.volatile:
                planned[key] = Unknown
        return planned

    def create(self, ctx: CreateContext, planned: State) -> State | None:
        return self._guard(ctx, "create", None, lambda c: self._create(c, planned))

    def read(self, ctx: ReadContext, current: State) -> State | None:
        return self._guard(ctx, "read", current, lambda c: self._read(c, current))

    def update(self, ctx: UpdateContext, current: State, planned: State) -> State | None:
        return self._guard(ctx, "update", current, lambda c: self._update(c, current, planned))

    def delete(self, ctx: DeleteContext, current: State) -> None:
        return self._guard(ctx, "delete", current, lambda c: self._delete(c, current))

    def import_(self, ctx: ImportContext, id: str) -> State | None:  # noqa: A002 - tf's name
        found = self._guard(ctx, "import", None, lambda c: self._read(c, self._import_state(id)))
        if found is None and not ctx.diagnostics.has_errors():
            ctx.diagnostics.add_error(f"Cannot import {ctx.type_name} {id!r}",
                                      "the control API has no such object")
        return found  # type: ignore[no-any-return]

    # what each resource implements
    def _create(self, c: ControlApiClient, planned: State) -> State | None:
        raise NotImplementedError

    def _read(self, c: ControlApiClient, current: State) -> State | None:
        raise NotImplementedError

    def _update(self, c: ControlApiClient, current: State, planned: State) -> State | None:
        return self._create(c, planned)

    def _delete(self, c: ControlApiClient, current: State) -> None:
        raise NotImplementedError

    def _import_state(self, id: str) -> State:  # noqa: A002
        raise NotImplementedError


class Policy(_Base):
    """A Rego policy of the registry (destroy disables it: versions are kept in history)."""

    name = "policy"
    volatile = ("version", "content_hash")
    schema = Schema(attributes=[
        Attribute("policy_id", String(), required=True, requires_replace=True,
                  description="Policy id: the Rego module's package (`novacron.team.limits`)."),
        Attribute("rego", String(), required=True, description="The Rego module source."),
        Attribute("name", String(), optional=True, computed=True, description="Display name."),
        Attribute("policy_type", String(), optional=True, computed=True, default="access",
                  requires_replace=True, description=f"One of {', '.join(POLICY_TYPES)}."),
        Attribute("enforcement", String(), optional=True, computed=True, default="block",
                  description="block, warn or audit."),
        Attribute("version", Number(), computed=True, description="Registry version."),
        Attribute("content_hash", String(), computed=True, description="SHA-256 of the Rego."),
    ])

    def validate(self, diags: Any, type_name: str, config: State) -> None:
        super().validate(diags, type_name, config)
        check_choice(diags, config, "policy_type", POLICY_TYPES)
        check_choice(diags, config, "enforcement", ENFORCEMENTS)
        rego, pid = config.get("rego"), config.get("policy_id")
        if known(rego) and known(pid) and f"package {pid}" not in str(rego):
            diags.add_error("policy_id must be the Rego module's package",
                            f"the module does not declare `package {pid}`", path=["rego"])

    def _import_state(self, id: str) -> State:  # noqa: A002
        return {"policy_id": id}

    def _path(self, current: State) -> str:
        return ControlApiClient.path("policies", current["policy_id"])

    def _read(self, c: ControlApiClient, current: State) -> State | None:
        p = c.get(self._path(current))
        if p is None or not p.get("enabled", True):
            return None
        return {"policy_id": p["policy_id"], "rego": p["rego"], "name": p["name"],
                "policy_type": p["policy_type"], "enforcement": p["enforcement"],
                "version": p["version"], "content_hash": p["content_hash"]}

    def _body(self, planned: State) -> State:
        body = {k: planned[k] for k in ("rego", "enforcement", "name") if known(planned.get(k))}
        return body

    def _create(self, c: ControlApiClient, planned: State) -> State | None:
        pid = planned["policy_id"]
        existing = c.get(self._path(planned))
        if existing is None:
            c.post("/policies", {"policy_id": pid, "policy_type": planned["policy_type"],
                                 **self._body(planned)})
        elif existing.get("enabled", True):
            raise ApiError(409, f"policy {pid} already exists",
                           f"adopt it with `terraform import <address> {pid}`")
        else:  # disabled (destroyed earlier): this configuration takes it over again
            if existing["policy_type"] != planned["policy_type"]:
                raise ApiError(409, f"policy {pid} exists with type {existing['policy_type']}",
                               "a policy's type cannot change; use another policy_id")
            c.put(self._path(planned), self._body(planned))
            c.post(self._path(planned) + "/enable", {})
        return self._read(c, planned)

    def _update(self, c: ControlApiClient, current: State, planned: State) -> State | None:
        c.put(self._path(current), self._body(planned))
        return self._read(c, planned)

    def _delete(self, c: ControlApiClient, current: State) -> None:
        c.delete(self._path(current))


class Runbook(_Base):
    """A runbook of the registry topic (gate and executor serve it instead of a shipped one)."""

    name = "runbook"
    volatile = ("content_hash",)
    schema = Schema(attributes=[
        Attribute("runbook_id", String(), required=True, requires_replace=True,
                  description="The runbook's metadata.id."),
        Attribute("yaml", String(), required=True, description="The runbook YAML."),
        Attribute("content_hash", String(), computed=True,
                  description="SHA-256 the gate approves and the executor verifies."),
    ])

    def _import_state(self, id: str) -> State:  # noqa: A002
        return {"runbook_id": id}

    def _path(self, state: State) -> str:
        return ControlApiClient.path("runbooks", state["runbook_id"])

    def _read(self, c: ControlApiClient, current: State) -> State | None:
        r = c.get(self._path(current))
        if r is None:
            return None
        return {"runbook_id": r["runbook_id"], "yaml": r["yaml"],
                "content_hash": r["content_hash"]}

    def _create(self, c: ControlApiClient, planned: State) -> State | None:
        c.post("/runbooks", {"yaml": planned["yaml"]})
        return self._read(c, planned)

    def _update(self, c: ControlApiClient, current: State, planned: State) -> State | None:
        c.put(self._path(current), {"yaml": planned["yaml"]})
        return self._read(c, planned)

    def _delete(self, c: ControlApiClient, current: State) -> None:
        c.delete(self._path(current))


class Baseline(_Base):
    """The declared configuration of one resource (what drift compares against)."""

    name = "baseline"
    schema = Schema(attributes=[
        Attribute("resource_id", String(), required=True, requires_replace=True,
                  description="The resource (e.g. a Terraform address)."),
        Attribute("resource_type", String(), required=True, description="Its type."),
        Attribute("config", CompactJson(), required=True,
                  description="The declared config, a JSON object (use jsonencode)."),
    ])

    def validate(self, diags: Any, type_name: str, config: State) -> None:
        super().validate(diags, type_name, config)
        raw = config.get("config")
        if known(raw):
            try:
                parsed = json.loads(str(raw))
            except ValueError as exc:
                diags.add_error("config is not JSON", str(exc), path=["config"])
                return
            if not isinstance(parsed, dict):
                diags.add_error("config must be a JSON object", "use jsonencode({ ... })",
                                path=["config"])

    def _import_state(self, id: str) -> State:  # noqa: A002
        return {"resource_id": id}

    def _path(self, state: State) -> str:
        return ControlApiClient.path("baselines", state["resource_id"])

    def _read(self, c: ControlApiClient, current: State) -> State | None:
        b = c.get(self._path(current))
        if b is None:
            return None
        return {"resource_id": b["resource_id"], "resource_type": b["resource_type"],
                "config": b["config"]}

    def _create(self, c: ControlApiClient, planned: State) -> State | None:
        c.put(self._path(planned), {"resource_type": planned["resource_type"],
                                    "config": planned["config"]})
        return self._read(c, planned)

    def _delete(self, c: ControlApiClient, current: State) -> None:
        c.delete(self._path(current))


class DriftIgnore(_Base):
    """A drift ignore rule: a JSON-pointer pattern not compared for a resource type."""

    name = "drift_ignore"
    schema = Schema(attributes=[
        Attribute("path", String(), required=True, requires_replace=True,
                  description="JSON-pointer pattern (`/tags/build`, `**/arn`)."),
        Attribute("resource_type", String(), optional=True, computed=True, default="*",
                  requires_replace=True, description="Resource type glob (default `*`)."),
        Attribute("reason", String(), optional=True, computed=True, default="",
                  description="Why the difference is expected."),
        Attribute("expires_at", String(), optional=True,
                  description="RFC 3339 time after which the rule stops applying."),
        Attribute("rule_id", String(), computed=True, description="The rule's id."),
    ])

    def validate(self, diags: Any, type_name: str, config: State) -> None:
        super().validate(diags, type_name, config)
        check_time(diags, config, "expires_at")

    def _import_state(self, id: str) -> State:  # noqa: A002
        return {"rule_id": id}

    def _read(self, c: ControlApiClient, current: State) -> State | None:
        if not current.get("rule_id"):
            return None
        r = c.get(ControlApiClient.path("ignores", current["rule_id"]))
        if r is None:
            return None
        return {"path": r["path"], "resource_type": r["resource_type"], "reason": r["reason"],
                "expires_at": same_time(current.get("expires_at"), r.get("expires_at")),
                "rule_id": r["rule_id"]}

    def _body(self, planned: State) -> State:
        return {"reason": planned.get("reason") or "", "expires_at": planned.get("expires_at")}

    def _create(self, c: ControlApiClient, planned: State) -> State | None:
        made = c.post("/ignores", {"path": planned["path"],
                                   "resource_type": planned.get("resource_type") or "*",
                                   **self._body(planned)})
        return self._read(c, {**planned, "rule_id": made["rule_id"]})

    def _update(self, c: ControlApiClient, current: State, planned: State) -> State | None:
        c.put(ControlApiClient.path("ignores", current["rule_id"]), self._body(planned))
        return self._read(c, {**planned, "rule_id": current["rule_id"]})

    def _delete(self, c: ControlApiClient, current: State) -> None:
        c.delete(ControlApiClient.path("ignores", current["rule_id"]))


class ComplianceException(_Base):
    """A risk acceptance: a control's violations on a resource (or *) count as accepted until a
    review date."""

    name = "compliance_exception"
    volatile = ("by", "active")
    schema = Schema(attributes=[
        Attribute("control_id", String(), required=True, requires_replace=True,
                  description="An automated control of the library."),
        Attribute("resource_id", String(), optional=True, computed=True, default="*",
                  requires_replace=True, description="The resource covered (default `*`)."),
        Attribute("reason", String(), required=True, description="Why the risk is accepted."),
        Attribute("evidence_url", String(), optional=True, computed=True, default="",
                  description="Link to the ticket or document."),
        Attribute("expires_at", String(), required=True,
                  description="RFC 3339 review date (at most three years ahead)."),
        Attribute("exception_id", String(), computed=True, description="`control:resource`."),
        Attribute("by", String(), computed=True, description="Who accepted it."),
        Attribute("active", Bool(), computed=True, description="Counts now."),
    ])

    def validate(self, diags: Any, type_name: str, config: State) -> None:
        super().validate(diags, type_name, config)
        check_time(diags, config, "expires_at")
        evidence = config.get("evidence_url")
        if known(evidence) and evidence and not str(evidence).startswith(("https://", "http://")):
            diags.add_error("evidence_url must be an http or https link", str(evidence),
                            path=["evidence_url"])

    def _import_state(self, id: str) -> State:  # noqa: A002
        return {"exception_id": id}

    def _id(self, state: State) -> str:
        resource = state.get("resource_id") or "*"
        return state.get("exception_id") or f"{state['control_id']}:{resource}"

    def _read(self, c: ControlApiClient, current: State) -> State | None:
        e = c.get(ControlApiClient.path("exceptions", self._id(current)))
        if e is None:
            return None
        return {"control_id": e["control_id"], "resource_id": e["resource_id"],
                "reason": e["reason"], "evidence_url": e["evidence_url"],
                "expires_at": same_time(current.get("expires_at"), e["expires_at"]),
                "exception_id": e["id"], "by": e["by"], "active": e["active"]}

    def _body(self, planned: State) -> State:
        return {"reason": planned["reason"], "evidence_url": planned.get("evidence_url") or "",
                "expires_at": planned["expires_at"]}

    def _create(self, c: ControlApiClient, planned: State) -> State | None:
        made = c.post("/exceptions", {"control_id": planned["control_id"],
                                      "resource_id": planned.get("resource_id") or "*",
                                      **self._body(planned)})
        return self._read(c, {**planned, "exception_id": made["id"]})

    def _update(self, c: ControlApiClient, current: State, planned: State) -> State | None:
        c.put(ControlApiClient.path("exceptions", self._id(current)), self._body(planned))
        return self._read(c, current)

    def _delete(self, c: ControlApiClient, current: State) -> None:
        c.delete(ControlApiClient.path("exceptions", self._id(current)))


RESOURCES: list[type[_Base]] = [Policy, Runbook, Baseline, DriftIgnore, ComplianceException]
"""Every resource type (`novacron_<name>`)."""
