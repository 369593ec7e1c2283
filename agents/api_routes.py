"""Routes of the HTTP control API: the route type, path matching, extensions, OpenAPI."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Literal, Protocol

from pydantic import BaseModel

from schemas import Event

__all__ = [
    "ApiExtension",
    "Response",
    "Route",
    "Verb",
    "openapi_document",
    "register_extension",
    "registered_extensions",
    "route_matcher",
]

Response = tuple[int, dict[str, Any]]
Verb = Literal["read", "write", "evaluate", "approve"]


@dataclass(frozen=True, slots=True)
class Route:
    """A route of the API; extensions declare theirs with it (handler: a method of the owner)."""

    method: str
    pattern: str
    verb: Verb | None  # None: no authentication (health, openapi)
    resource: str
    handler: str
    summary: str
    body: type[BaseModel] | None = None


@lru_cache(maxsize=512)
def route_matcher(pattern: str) -> re.Pattern[str]:
    """The regular expression of a path pattern (`{name}` matches one segment)."""
    return re.compile("^" + re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", pattern) + "$")


class ApiExtension(Protocol):
    """Routes mounted beside the built-in ones by another module (e.g. agents.compliance_api).

    Handlers take the same keyword arguments as ControlApi's (subject, body, path parameters)
    and return (status, json); events they produce come back through `drain_events`.
    """

    @property
    def routes(self) -> Sequence[Route]: ...

    def drain_events(self) -> list[Event]: ...


_EXTENSIONS: list[ApiExtension] = []


def register_extension(extension: ApiExtension) -> None:
    """Mount an extension on every ControlApi of this process that did not get its own list
    (the govern role's compliance host registers its routes this way)."""
    _EXTENSIONS.append(extension)


def registered_extensions() -> Sequence[ApiExtension]:
    """The process-wide extensions, in the order they were registered."""
    return _EXTENSIONS


def openapi_document(routes: Sequence[Route]) -> dict[str, Any]:
    """OpenAPI 3.1 description generated from a route table."""
    paths: dict[str, dict[str, Any]] = {}
    for r in routes:
        op: dict[str, Any] = {
            "summary": r.summary,
            "operationId": r.handler.strip("_") + "_" + r.method.lower(),
            "responses": _responses(r),
        }
        if r.verb is not None:
            op["security"] = [{"bearer": []}]
        params = re.findall(r"\{(\w+)\}", r.pattern)
        if params:
            op["parameters"] = [
                {"name": n, "in": "path", "required": True, "schema": {"type": "string"}}
                for n in params
            ]
        if r.body is not None:
            op["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": r.body.model_json_schema()}},
            }
        paths.setdefault(r.pattern, {})[r.method.lower()] = op
    return {
        "openapi": "3.1.0",
        "info": {"title": "NovaCron control API", "version": "1.0.0"},
        "paths": paths,
        "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
    }


def _responses(r: Route) -> dict[str, Any]:
    ok = {"description": "OK", "content": {"application/json": {"schema": {"type": "object"}}}}
    out: dict[str, Any] = {"200": ok}
    if r.verb is not None:
        out |= {
            "401": {"description": "missing or unknown token"},
            "403": {"description": "denied by policy"},
        }
    if r.body is not None:
        out["400"] = {"description": "invalid request"}
    return out
