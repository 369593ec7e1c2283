"""OpaEngine against a real local HTTP server that speaks OPA's REST API (v1 policies and data)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from policies.engine import StaticSource
from policies.opa import OpaConfig, OpaEngine
from policies.registry import PolicyRegistry

SAFETY = """package novacron.t.safety
import rego.v1
deny contains "no scale_down in an incident" if {
    input.action == "scale_down"
    input.context.incident
}
"""


class OpaLike(BaseHTTPRequestHandler):
    """PUT /v1/policies/{id} stores a module; POST /v1/data/{path} evaluates it (regopy inside)."""

    modules: dict[str, str] = {}
    lock = threading.Lock()

    def log_message(self, *args: Any) -> None:  # keep pytest output clean
        return

    def _reply(self, status: int, doc: dict[str, Any]) -> None:
        raw = json.dumps(doc).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def _body(self) -> bytes:
        return self.rfile.read(int(self.headers.get("Content-Length", 0)))

    def do_PUT(self) -> None:  # noqa: N802 - http.server naming
        if not self.path.startswith("/v1/policies/"):
            return self._reply(404, {"code": "resource_not_found", "message": self.path})
        with self.lock:
            self.modules[self.path.removeprefix("/v1/policies/")] = self._body().decode()
        return self._reply(200, {})

    def do_POST(self) -> None:  # noqa: N802
        if not self.path.startswith("/v1/data/"):
            return self._reply(404, {"code": "resource_not_found", "message": self.path})
        from regopy import Input, Interpreter

        path, _, query = self.path.partition("?")
        ref = "data." + path.removeprefix("/v1/data/").strip("/").replace("/", ".")
        doc = json.loads(self._body() or b"{}")
        interp = Interpreter()
        interp.strict_built_in_errors = "strict-builtin-errors=true" in query
        with self.lock:
            for name, src in self.modules.items():
                interp.add_module(name, src)
        interp.set_input(Input(doc.get("input", {})))
        out = interp.query(f"x := {ref}")
        if not out.ok():
            return self._reply(500, {"code": "internal_error", "message": str(out)})
        text = str(out)
        if not text.startswith("{"):
            return self._reply(200, {})  # undefined document: OPA omits "result"
        return self._reply(200, {"result": json.loads(text)["bindings"]["x"]})


@pytest.fixture
def opa_url() -> Iterator[str]:
    OpaLike.modules = {}
    server = ThreadingHTTPServer(("127.0.0.1", 0), OpaLike)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join()


def test_opa_backend_pushes_and_evaluates(opa_url: str) -> None:
    reg = PolicyRegistry()
    reg.register("safety", SAFETY, policy_type="action_safety")
    engine = OpaEngine(reg, OpaConfig(url=opa_url))
    try:
        denied = engine.evaluate({"action": "scale_down", "context": {"incident": True}})
        allowed = engine.evaluate({"action": "scale_down", "context": {"incident": False}})
    finally:
        engine.close()
    assert set(OpaLike.modules) == {"safety"}
    assert not denied.allowed and denied.violations == ["safety: no scale_down in an incident"]
    assert allowed.allowed and allowed.policy_versions == {"safety": 1}


def test_opa_undefined_document_fails_closed(opa_url: str) -> None:
    reg = PolicyRegistry()
    reg.register("safety", SAFETY, policy_type="action_safety")
    engine = OpaEngine(reg, OpaConfig(url=opa_url, push_policies=False))  # OPA knows no policy
    try:
        result = engine.evaluate({"action": "scale_down", "context": {"incident": False}})
    finally:
        engine.close()
    assert not result.allowed and result.error and "undefined" in result.error


def test_opa_unreachable_fails_closed() -> None:
    source = StaticSource(PolicyRegistry().seed([]))
    reg = PolicyRegistry()
    reg.register("safety", SAFETY, policy_type="action_safety")
    source.replace(reg.current())
    engine = OpaEngine(source, OpaConfig(url="http://127.0.0.1:9", timeout_seconds=0.5))
    try:
        result = engine.evaluate({"action": "scale_down"})
    finally:
        engine.close()
    assert not result.allowed and result.error and "OPA unreachable" in result.error
