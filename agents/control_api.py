"""The HTTP control API as pure logic: routes, bearer-token authentication, Rego authorisation."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict
from typing import Any, Literal

from pydantic import BaseModel, Field, ValidationError

from agents.access import ApiSubject, Authoriser, hash_token
from agents.api_body import parse_body
from agents.api_routes import (
    ApiExtension,
    Response,
    Route,
    openapi_document,
    registered_extensions,
    route_matcher,
)
from agents.gate import PolicyGate
from policies.engine import PolicyEngine
from policies.registry import PolicyRegistry
from schemas import Approval, Event, PolicyVersion
from schemas.errors import RejectedError

__all__ = ["ApiConfig", "ApiSubject", "ControlApi", "hash_token"]



class ApiConfig(BaseModel):
    """Authentication settings of the control API."""

    tokens: dict[str, ApiSubject] = Field(default_factory=dict)
    """SHA-256 hex of each bearer token → its subject (see `hash_token`)."""
    access_policy_types: list[str] = Field(default_factory=lambda: ["access"])
    """Policy types that authorise API calls."""
    source: str = "novacron.control-api"
    """`source` of the approval events the API emits."""
    max_body_bytes: int = Field(default=1_048_576, ge=2)
    """Largest request body; larger ones are refused with 413."""
    max_depth: int = Field(default=64, ge=1)
    """Deepest nesting of objects and arrays in a body; deeper ones are refused with 400."""
    max_nodes: int = Field(default=100_000, ge=1)
    """Most values (objects, arrays, scalars) in a body; more are refused with 400."""


class RegisterBody(BaseModel):
    """Body of POST /policies."""

    policy_id: str = Field(min_length=1, max_length=128)
    rego: str = Field(min_length=1)
    name: str = ""
    policy_type: str = "access"
    enforcement: str = "block"
    signature: str | None = None


class UpdateBody(BaseModel):
    """Body of PUT /policies/{id}."""

    rego: str | None = None
    enforcement: str | None = None
    name: str | None = None
    signature: str | None = None


class RollbackBody(BaseModel):
    """Body of POST /policies/{id}/rollback."""

    version: int = Field(ge=1)


class EvaluateBody(BaseModel):
    """Body of POST /evaluate."""

    input: dict[str, Any]
    types: list[str] | None = None
    policy_ids: list[str] | None = None


class DecideBody(BaseModel):
    """Body of POST /approvals/{id}/approve|reject."""

    reason: str = ""


_ROUTES = (
    Route("GET", "/health", None, "health", "_health", "Liveness and policy counts"),
    Route("GET", "/openapi.json", None, "openapi", "_openapi", "This OpenAPI 3.1 document"),
    Route("GET", "/policies", "read", "policy", "_list", "List policies"),
    Route("POST", "/policies", "write", "policy", "_register", "Register a policy", RegisterBody),
    Route("GET", "/policies/{id}", "read", "policy", "_get", "Current version of a policy"),
    Route(
        "PUT", "/policies/{id}", "write", "policy", "_update", "New version of a policy", UpdateBody
    ),
    Route(
        "DELETE",
        "/policies/{id}",
        "write",
        "policy",
        "_disable",
        "Disable a policy (kept in history)",
    ),
    Route("POST", "/policies/{id}/enable", "write", "policy", "_enable", "Enable a policy"),
    Route("POST", "/policies/{id}/disable", "write", "policy", "_disable", "Disable a policy"),
    Route(
        "GET", "/policies/{id}/history", "read", "policy", "_history", "Every version of a policy"
    ),
    Route(
        "POST",
        "/policies/{id}/rollback",
        "write",
        "policy",
        "_rollback",
        "Roll back to a version",
        RollbackBody,
    ),
    Route(
        "POST",
        "/evaluate",
        "evaluate",
        "evaluation",
        "_evaluate",
        "Evaluate an input",
        EvaluateBody,
    ),
    Route("GET", "/approvals", "read", "approval", "_approvals", "Pending approvals"),
    Route(
        "POST", "/approvals/{id}/approve", "approve", "approval", "_approve", "Approve", DecideBody
    ),
    Route(
        "POST", "/approvals/{id}/reject", "approve", "approval", "_reject", "Reject", DecideBody
    ),
)


class ControlApi:
    """`handle(method, path, headers, body) -> (status, json)`, mounted by the host on its server.

    Changes return their events through `drain_events()` (PolicyVersion → `policies`,
    Approval → `approvals`); the gate releases approved items when it consumes the approval.
    """

    def __init__(
        self,
        engine: PolicyEngine,
        registry: PolicyRegistry,
        gate: PolicyGate | None,
        tokens: ApiConfig | Mapping[str, ApiSubject],
        validate_rego: Callable[[str], list[str]] | None = None,
        extensions: Sequence[ApiExtension] | None = None,
    ) -> None:
        self.engine, self.registry, self.gate = engine, registry, gate
        self.config = tokens if isinstance(tokens, ApiConfig) else ApiConfig(tokens=dict(tokens))
        self.validate_rego = validate_rego
        self.access = Authoriser(engine, self.config.tokens, self.config.access_policy_types)
        self._outbox: list[Event] = []
        self._extensions = extensions  # None: the process-wide registered extensions

    @property
    def extensions(self) -> Sequence[ApiExtension]:
        return registered_extensions() if self._extensions is None else self._extensions

    def drain_events(self) -> list[Event]:
        """Events produced since the last call, for the host to publish."""
        events, self._outbox = self._outbox, []
        for extension in self.extensions:
            events += extension.drain_events()
        return events

    def drain_records(self) -> list[tuple[str, bytes, bytes | None]]:
        """Raw (logical topic, key, value) records of compacted topics that carry no events
        (`runbooks`, `drift-ignores`), from extensions that write them (`drain_records`)."""
        records: list[tuple[str, bytes, bytes | None]] = []
        for extension in self.extensions:
            drain = getattr(extension, "drain_records", None)
            if drain is not None:
                records += drain()
        return records

    def handle(
        self, method: str, path: str, headers: Mapping[str, str], body: bytes | str | None = None
    ) -> Response:
        """Route, authenticate, authorise, run."""
        route, params = self._match(method.upper(), path.split("?", 1)[0].rstrip("/") or "/")
        owner = params.pop("_owner", self)
        if route is None:
            return params.pop("status", 404), {"error": params.pop("error", "not found")}
        subject: ApiSubject | None = None
        if route.verb is not None:
            subject = self._authenticate(headers)
            if subject is None:
                return 401, {"error": "missing or unknown bearer token"}
            denied = self._authorise(subject, route, params.get("id"))
            if denied is not None:
                return denied
        try:
            if body is not None and len(body) > self.config.max_body_bytes:
                return 413, {"error": f"body larger than {self.config.max_body_bytes} bytes"}
            cfg = self.config
            data = parse_body(body, cfg.max_depth, cfg.max_nodes) if route.body else None
            parsed = route.body.model_validate(data) if route.body else None
            handler: Callable[..., Response] = getattr(owner, route.handler)
            return handler(subject=subject, body=parsed, **params)
        except (ValidationError, ValueError) as exc:
            return 400, {"error": "invalid request", "detail": str(exc)[:2000]}
        except RejectedError as exc:
            status = 404 if str(exc).startswith("unknown policy") else 409
            return status, {"error": str(exc)}

    def _match(self, method: str, path: str) -> tuple[Route | None, dict[str, Any]]:
        allowed = []
        candidates = [(r, self) for r in _ROUTES] + [
            (r, ext) for ext in self.extensions for r in ext.routes]
        for route, owner in candidates:
            m = route_matcher(route.pattern).match(path)
            if m and route.method == method:
                return route, {**m.groupdict(), "_owner": owner}
            if m:
                allowed.append(route.method)
        if allowed:
            return None, {"status": 405, "error": f"method not allowed; use {', '.join(allowed)}"}
        return None, {}

    def _authenticate(self, headers: Mapping[str, str]) -> ApiSubject | None:
        return self.access.authenticate(headers)

    def _authorise(self, subject: ApiSubject, route: Route, rid: str | None) -> Response | None:
        resource = {"type": route.resource, "id": rid or "", "path": route.pattern}
        denied = self.access.authorise(subject, str(route.verb), resource, route.method)
        return None if denied is None else (denied.status, denied.body())

    # --- handlers --------------------------------------------------------------------------------
    def _health(self, **_: Any) -> Response:
        pending = len(self.gate.pending()) if self.gate else 0
        return 200, {
            "status": "ok",
            "policies": len(self.registry.current()),
            "enabled": len(self.registry.active()),
            "pending_approvals": pending,
        }

    def _openapi(self, **_: Any) -> Response:
        extra = [r for ext in self.extensions for r in ext.routes]
        return 200, openapi_document([*_ROUTES, *extra])

    def _list(self, **_: Any) -> Response:
        return 200, {"policies": [_summary(p) for p in self.registry.current()]}

    def _get(self, id: str, **_: Any) -> Response:  # noqa: A002 - path parameter name
        return 200, self.registry.get(id).model_dump(mode="json")

    def _check(self, rego: str | None) -> None:
        if rego is not None and self.validate_rego is not None:
            errors = self.validate_rego(rego)
            if errors:
                raise ValueError("the Rego module does not compile: " + " | ".join(errors[:5]))

    def _register(self, subject: ApiSubject, body: RegisterBody, **_: Any) -> Response:
        self._check(body.rego)
        event = self.registry.register(
            body.policy_id,
            body.rego,
            name=body.name,
            policy_type=body.policy_type,
            enforcement=body.enforcement,
            author=subject.user,
            signature=body.signature,
        )
        return self._changed(event, 201)

    def _update(self, id: str, subject: ApiSubject, body: UpdateBody, **_: Any) -> Response:  # noqa: A002
        self._check(body.rego)
        event = self.registry.update(
            id,
            rego=body.rego,
            enforcement=body.enforcement,
            name=body.name,
            author=subject.user,
            signature=body.signature,
        )
        return self._changed(event)

    def _enable(self, id: str, subject: ApiSubject, **_: Any) -> Response:  # noqa: A002
        return self._changed(self.registry.enable(id, author=subject.user))

    def _disable(self, id: str, subject: ApiSubject, **_: Any) -> Response:  # noqa: A002
        return self._changed(self.registry.disable(id, author=subject.user))

    def _rollback(self, id: str, subject: ApiSubject, body: RollbackBody, **_: Any) -> Response:  # noqa: A002
        return self._changed(self.registry.rollback(id, body.version, author=subject.user))

    def _history(self, id: str, **_: Any) -> Response:  # noqa: A002
        return 200, {"policy_id": id, "versions": [_summary(p) for p in self.registry.history(id)]}

    def _changed(self, event: PolicyVersion, status: int = 200) -> Response:
        self._outbox.append(event)
        return status, _summary(event)

    def _evaluate(self, body: EvaluateBody, **_: Any) -> Response:
        result = self.engine.evaluate(body.input, types=body.types, policy_ids=body.policy_ids)
        return 200, asdict(result)

    def _approvals(self, **_: Any) -> Response:
        items = self.gate.pending() if self.gate else []
        return 200, {"pending": [a.model_dump(mode="json") for a in items]}

    def _approve(self, id: str, subject: ApiSubject, body: DecideBody, **_: Any) -> Response:  # noqa: A002
        return self._decide(id, "approved", subject, body)

    def _reject(self, id: str, subject: ApiSubject, body: DecideBody, **_: Any) -> Response:  # noqa: A002
        return self._decide(id, "rejected", subject, body)

    def _decide(
        self,
        rid: str,
        status: Literal["approved", "rejected"],
        subject: ApiSubject,
        body: DecideBody,
    ) -> Response:
        pending = {a.request_id: a for a in (self.gate.pending() if self.gate else [])}
        if rid not in pending:
            return 404, {"error": f"no pending approval {rid!r}"}
        approval = Approval.caused_by(
            pending[rid],
            request_id=rid,
            status=status,
            by=subject.user,
            reason=body.reason,
            resource_id=pending[rid].resource_id,
            source=self.config.source,
        )
        self._outbox.append(approval)
        return 202, approval.model_dump(mode="json")


def _summary(p: PolicyVersion) -> dict[str, Any]:
    return p.model_dump(mode="json", exclude={"rego"})
