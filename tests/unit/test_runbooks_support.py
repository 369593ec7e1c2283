"""Shared helpers for the runbook tests: local HTTP servers (webhook, generic API, ArgoCD)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from runbooks.loader import Library, parse_runbook
from runbooks.model import Runbook
from runbooks.resolve import Resolver
from schemas import Action

__test__ = False  # helpers only


def book(steps: list[dict[str, Any]], **top: Any) -> Runbook:
    """A runbook from step dicts (through the schema, like a YAML file)."""
    data = {"metadata": {"id": top.pop("id", "t")}, "steps": steps, **top}
    return parse_runbook(data)


def approved(
    library: Library,
    action_type: str,
    params: dict[str, Any] | None = None,
    runbooks: dict[str, str] | None = None,
    **fields: Any,
) -> Action:
    """An Action as the gate emits it: resolved runbook, content hash and typed variables."""
    resolved = Resolver(library.get, runbooks).resolve(action_type, params or {})
    fields.setdefault("action_id", "act-1")
    fields.setdefault("resource_id", "web-1")
    return Action(action_type=action_type, params=resolved.variables,
                  runbook=resolved.runbook_id, runbook_hash=resolved.runbook_hash, **fields)


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: Any


@dataclass
class ServerState:
    requests: list[Seen] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)
    """Statuses to answer generic requests with, in order (then 200)."""
    token: str = "argo-token"
    apps: dict[str, dict[str, Any]] = field(default_factory=dict)


def argo_app(name: str) -> dict[str, Any]:
    return {
        "metadata": {"name": name},
        "spec": {"source": {"repoURL": "https://git.example/x", "targetRevision": "HEAD"}},
        "status": {
            "sync": {"status": "OutOfSync", "revision": "aaa111"},
            "health": {"status": "Healthy"},
            "history": [{"id": 1, "revision": "aaa000"}, {"id": 2, "revision": "aaa111"}],
        },
    }


class _Handler(BaseHTTPRequestHandler):
    state: ServerState

    def log_message(self, *args: Any) -> None:
        pass

    def _reply(self, code: int, body: Any) -> None:
        raw = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        body = json.loads(raw) if raw else None
        self.state.requests.append(Seen(self.command, self.path, dict(self.headers), body))
        if self.path.startswith("/api/v1/applications"):
            return self._argocd(body)
        code = self.state.statuses.pop(0) if self.state.statuses else 200
        self._reply(code, {"ok": code < 400})

    def _argocd(self, body: Any) -> None:
        # the documented ApplicationService endpoints, bearer-token auth
        if self.headers.get("Authorization") != f"Bearer {self.state.token}":
            return self._reply(401, {"error": "invalid session", "code": 16})
        parts = self.path.split("?")[0].strip("/").split("/")  # api v1 applications name [op]
        name = parts[3] if len(parts) > 3 else None
        if name is None and self.command == "POST":
            created = argo_app(body["metadata"]["name"])
            self.state.apps[created["metadata"]["name"]] = created
            return self._reply(200, created)
        found = self.state.apps.get(name or "")
        if found is None:
            return self._reply(404, {"error": f'applications.argoproj.io "{name}" not found'})
        app = found
        op = parts[4] if len(parts) > 4 else None
        if op == "sync" and self.command == "POST":
            app["status"]["sync"] = {"status": "Synced", "revision": body.get("revision", "HEAD")}
            app["status"]["operationState"] = {"phase": "Succeeded"}
        elif op == "rollback" and self.command == "PUT":
            ids = {h["id"]: h for h in app["status"]["history"]}
            if body.get("id") not in ids:
                return self._reply(
                    400, {"error": f"application has no history id {body.get('id')}"}
                )
            app["status"]["sync"] = {"status": "Synced", "revision": ids[body["id"]]["revision"]}
        elif op is not None or self.command != "GET":
            return self._reply(405, {"error": "method not allowed"})
        return self._reply(200, app)

    do_GET = do_POST = do_PUT = do_DELETE = _handle


@contextmanager
def local_server() -> Iterator[tuple[str, ServerState]]:
    """A real HTTP server on 127.0.0.1 in a thread: generic endpoints plus an ArgoCD API."""
    state = ServerState()
    handler = type("H", (_Handler,), {"state": state})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", state
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
