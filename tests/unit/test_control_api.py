"""Control API: bearer tokens, Rego authorisation, policy CRUD, approvals, OpenAPI."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from agents.control_api import ApiConfig, ApiSubject, ControlApi, hash_token
from agents.gate import PolicyGate
from policies.engine import RegoEngine, compile_errors
from policies.registry import PolicyRegistry
from policies.source import load_directory
from schemas import Approval, Decision, PolicyVersion

POLICY_DIR = Path(__file__).resolve().parents[2] / "policies" / "rego"
LIMIT = (
    'package novacron.t.limit\nimport rego.v1\ndeny contains "too many" if input.context.n > 5\n'
)
TOKENS = {
    "admin-token": ("ana", "admin"),
    "op-token": ("olu", "operator"),
    "view-token": ("vi", "viewer"),
}


@pytest.fixture
def api() -> ControlApi:
    registry = PolicyRegistry()
    registry.seed(load_directory(POLICY_DIR))
    engine = RegoEngine(registry)
    config = ApiConfig(
        tokens={hash_token(t): ApiSubject(user=u, role=r) for t, (u, r) in TOKENS.items()}
    )
    return ControlApi(engine, registry, PolicyGate(engine), config, validate_rego=compile_errors)


def call(
    api: ControlApi, method: str, path: str, token: str | None = None, body: object = None
) -> tuple[int, dict]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return api.handle(method, path, headers, orjson.dumps(body) if body is not None else None)


def test_missing_token_is_401(api: ControlApi) -> None:
    assert call(api, "GET", "/policies")[0] == 401


def test_wrong_token_is_401(api: ControlApi) -> None:
    assert call(api, "GET", "/policies", "not-a-token")[0] == 401
    assert api.handle("GET", "/policies", {"Authorization": "Basic admin-token"})[0] == 401


def test_role_denied_by_rego_is_403(api: ControlApi) -> None:
    status, body = call(api, "POST", "/policies", "op-token", {"policy_id": "limit", "rego": LIMIT})
    assert status == 403
    assert body["reasons"] == ["novacron.access.rbac: role 'operator' may not write policy"]
    assert api.drain_events() == []


def test_allowed_call_is_200(api: ControlApi) -> None:
    status, body = call(api, "GET", "/policies", "view-token")
    assert status == 200
    assert "novacron.access.rbac" in {p["policy_id"] for p in body["policies"]}


def test_register_update_history_rollback_emit_events(api: ControlApi) -> None:
    body = {"policy_id": "limit", "rego": LIMIT, "policy_type": "resource_allocation"}
    assert call(api, "POST", "/policies", "admin-token", body)[0] == 201
    assert (
        call(api, "PUT", "/policies/limit", "admin-token", {"rego": LIMIT.replace("> 5", "> 1")})[0]
        == 200
    )
    probe = {"input": {"context": {"n": 3}}, "policy_ids": ["limit"]}
    assert call(api, "POST", "/evaluate", "op-token", probe)[1]["allowed"] is False
    status, rolled = call(api, "POST", "/policies/limit/rollback", "admin-token", {"version": 1})
    assert status == 200 and rolled["version"] == 3 and rolled["author"] == "ana"
    assert call(api, "POST", "/evaluate", "op-token", probe)[1]["allowed"] is True
    history = call(api, "GET", "/policies/limit/history", "view-token")[1]["versions"]
    assert [(v["version"], v["change"]) for v in history] == [
        (1, "register"),
        (2, "update"),
        (3, "rollback"),
    ]
    events = api.drain_events()
    assert [type(e) for e in events] == [PolicyVersion] * 3


def test_bad_rego_is_400_and_unknown_policy_404(api: ControlApi) -> None:
    status, body = call(
        api, "POST", "/policies", "admin-token", {"policy_id": "x", "rego": "package x\nallow if {"}
    )
    assert status == 400 and "does not compile" in body["detail"]
    assert call(api, "GET", "/policies/nope", "admin-token")[0] == 404
    assert call(api, "POST", "/policies", "admin-token", {"rego": LIMIT})[0] == 400


def test_approve_pending_item_emits_approval(api: ControlApi) -> None:
    assert api.gate is not None
    d = Decision(resource_id="web", decision_type="scale_up", requires_approval=True)
    api.gate.evaluate(d)
    status, body = call(api, "GET", "/approvals", "view-token")
    assert status == 200 and [a["request_id"] for a in body["pending"]] == [d.event_id]
    assert call(api, "POST", f"/approvals/{d.event_id}/approve", "view-token", {})[0] == 403
    status, _ = call(api, "POST", f"/approvals/{d.event_id}/approve", "op-token", {"reason": "ok"})
    assert status == 202
    (approval,) = api.drain_events()
    assert isinstance(approval, Approval) and approval.status == "approved" and approval.by == "olu"
    assert call(api, "POST", "/approvals/unknown/reject", "op-token", {})[0] == 404


def test_health_and_openapi_need_no_token(api: ControlApi) -> None:
    status, health = call(api, "GET", "/health")
    assert status == 200 and health["status"] == "ok" and health["enabled"] >= 6
    status, doc = call(api, "GET", "/openapi.json")
    assert status == 200 and doc["openapi"].startswith("3.1")
    assert {"/policies", "/policies/{id}/rollback", "/approvals/{id}/approve", "/evaluate"} <= set(
        doc["paths"]
    )
    assert call(api, "PATCH", "/policies", "admin-token")[0] == 405
    assert call(api, "GET", "/nowhere", "admin-token")[0] == 404


def nested(levels: int) -> dict:
    value: dict = {"leaf": 1}
    for _ in range(levels):
        value = {"x": value}
    return value


@pytest.mark.parametrize("levels", [70, 300, 2000])
def test_deeply_nested_evaluate_input_is_400_not_500(api: ControlApi, levels: int) -> None:
    raw = b'{"input": ' + b'{"x": ' * levels + b"1" + b"}" * levels + b"}"
    status, body = api.handle("POST", "/evaluate", {"Authorization": "Bearer op-token"}, raw)
    assert status == 400 and body["error"] == "invalid request"
    assert "nested deeper than 64 levels" in body["detail"] or "depth limit" in body["detail"]


def test_evaluate_bounds_size_and_value_count(api: ControlApi) -> None:
    status, body = call(api, "POST", "/evaluate", "op-token",
                        {"input": {"action": "read", "many": [0] * 200_000}})
    assert status == 400 and "more than 100000 values" in body["detail"]
    big = b'{"input": {"s": "' + b"x" * 1_100_000 + b'"}}'
    status, body = api.handle("POST", "/evaluate", {"Authorization": "Bearer op-token"}, big)
    assert status == 413 and "larger than 1048576 bytes" in body["error"]


def test_evaluate_within_bounds_still_answers(api: ControlApi) -> None:
    status, body = call(api, "POST", "/evaluate", "op-token",
                        {"input": {"subject": {"role": "viewer"}, "action": "read",
                                   "resource": {"type": "policy"}, "context": nested(40)},
                         "types": ["access"]})
    assert status == 200 and body["allowed"] is True
