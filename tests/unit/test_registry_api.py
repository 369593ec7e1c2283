"""Control API CRUD for runbooks, baselines, ignore rules and compliance exceptions (and the
score and findings reads), behind the same bearer tokens and Rego access policies."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest

from agents.control_api import ApiConfig, ApiSubject, ControlApi, hash_token
from agents.registry_api import RegistryApi
from agents.report_api import FindingsApi, ScoreApi, score_of
from agents.shared import SharedState
from policies.compliance import load_library
from policies.engine import RegoEngine
from policies.registry import PolicyRegistry
from policies.source import load_directory
from runbooks.loader import Library
from schemas import ComplianceResult, DesiredState
from schemas.attestations import ComplianceAttestation

POLICY_DIR = Path(__file__).resolve().parents[2] / "policies" / "rego"
TOKENS = {"admin": ("ana", "admin"), "op": ("olu", "operator"), "view": ("vi", "viewer")}
RUNBOOK = """metadata: {{id: team-hello, name: Hello, selectable: true}}
parameters:
  message: {{type: string, default: "{text}", overridable: true}}
steps:
  - id: say
    action_type: noop
    action: "say ${{message}}"
"""
LIBRARY = load_library(None, None, {})
CONTROL = next(c.id for c in LIBRARY.controls.values() if c.kind == "automated")
LATER = (datetime.now(UTC) + timedelta(days=90)).isoformat()


@pytest.fixture
def shared() -> SharedState:
    return SharedState()


@pytest.fixture
def api(shared: SharedState) -> ControlApi:
    registry = PolicyRegistry()
    registry.seed(load_directory(POLICY_DIR))
    config = ApiConfig(tokens={hash_token(t): ApiSubject(user=u, role=r)
                               for t, (u, r) in TOKENS.items()})
    results = [ComplianceResult(resource_id="vm-1", resource_type="aws_instance",
                                control_id="c1", standards=["cis:1.1"], passed=p, status=s)
               for p, s in ((True, "passed"), (False, "open"))]
    extensions = [RegistryApi(shared, controls=LIBRARY, library=Library()),
                  ScoreApi(lambda: results), FindingsApi(lambda: {"vm-2": "HIGH"})]
    return ControlApi(RegoEngine(registry), registry, None, config, extensions=extensions)


def call(api: ControlApi, method: str, path: str, token: str | None = "admin",
         body: object = None) -> tuple[int, dict]:  # type: ignore[type-arg]
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return api.handle(method, path, headers, orjson.dumps(body) if body is not None else None)


def test_runbooks_create_read_replace_delete(api: ControlApi, shared: SharedState) -> None:
    status, made = call(api, "POST", "/runbooks", body={"yaml": RUNBOOK.format(text="v1")})
    assert status == 201 and made["runbook_id"] == "team-hello" and made["author"] == "ana"
    assert call(api, "GET", "/runbooks/team-hello", "view")[1]["yaml"].count("v1") == 1
    assert call(api, "POST", "/runbooks", body={"yaml": RUNBOOK.format(text="v1")})[0] == 409
    status, changed = call(api, "PUT", "/runbooks/team-hello",
                           body={"yaml": RUNBOOK.format(text="v2")})
    assert status == 200 and changed["content_hash"] != made["content_hash"]
    assert call(api, "DELETE", "/runbooks/team-hello")[0] == 200
    assert call(api, "GET", "/runbooks/team-hello")[0] == 404
    records = api.drain_records()
    assert [(t, k, v is None) for t, k, v in records] == [
        ("runbooks", b"team-hello", False), ("runbooks", b"team-hello", False),
        ("runbooks", b"team-hello", True)]
    assert shared.runbooks.get("team-hello") is None


@pytest.mark.parametrize(("yaml", "words"), [
    ("metadata: {id: x}\nsteps: []\n", "at least 1 item"),
    ("metadata: {id: x}\nsteps:\n  - {id: a, action_type: workflow, action: nope}\n", "nope"),
    ("a: &a [*a]", "refused"),
])
def test_an_invalid_runbook_is_400_with_the_problems(api: ControlApi, yaml: str,
                                                     words: str) -> None:
    status, body = call(api, "POST", "/runbooks", body={"yaml": yaml})
    assert status == 400 and any(words in p for p in body["problems"]), body
    assert api.drain_records() == []


def test_a_put_must_name_the_runbook_it_carries(api: ControlApi) -> None:
    call(api, "POST", "/runbooks", body={"yaml": RUNBOOK.format(text="v1")})
    status, body = call(api, "PUT", "/runbooks/other", body={"yaml": RUNBOOK.format(text="v2")})
    assert status == 400 and "declares runbook team-hello" in body["error"]


def test_baselines_put_get_delete(api: ControlApi, shared: SharedState) -> None:
    body = {"resource_type": "aws_db_instance", "config": {"multi_az": True}}
    assert call(api, "PUT", "/baselines/db-1", body=body)[0] == 200
    assert call(api, "GET", "/baselines/db-1", "view")[1]["config"] == {"multi_az": True}
    assert call(api, "DELETE", "/baselines/db-1")[0] == 200
    assert call(api, "GET", "/baselines/db-1")[0] == 404
    events = api.drain_events()
    assert [type(e) for e in events] == [DesiredState, DesiredState] and events[1].deleted  # type: ignore[attr-defined]


def test_ignore_rules_create_update_delete(api: ControlApi, shared: SharedState) -> None:
    status, rule = call(api, "POST", "/ignores", body={"path": "/tags/build",
                                                        "resource_type": "aws_*"})
    assert status == 201 and len(shared.ignores.rules) == 1
    assert call(api, "POST", "/ignores", body={"path": "/tags/build",
                                               "resource_type": "aws_*"})[0] == 409
    status, new = call(api, "PUT", f"/ignores/{rule['rule_id']}",
                       body={"reason": "CI", "expires_at": "2031-01-01T00:00:00"})
    assert status == 200 and new["reason"] == "CI" and new["expires_at"].startswith("2031")
    assert call(api, "DELETE", f"/ignores/{rule['rule_id']}")[0] == 200
    assert shared.ignores.rules == []
    assert call(api, "POST", "/ignores", body={"path": "["})[0] == 400


def test_exceptions_create_update_revoke(api: ControlApi, shared: SharedState) -> None:
    body = {"control_id": CONTROL, "resource_id": "db-1", "reason": "single AZ until Q3",
            "expires_at": LATER}
    status, made = call(api, "POST", "/exceptions", body=body)
    assert status == 201 and made["id"] == f"{CONTROL}:db-1" and made["active"]
    assert call(api, "POST", "/exceptions", body=body)[0] == 409
    status, changed = call(api, "PUT", f"/exceptions/{CONTROL}:db-1",
                           body={**body, "reason": "until Q4"})
    assert status == 200 and changed["reason"] == "until Q4"
    assert call(api, "DELETE", f"/exceptions/{CONTROL}:db-1")[0] == 200
    assert call(api, "GET", f"/exceptions/{CONTROL}:db-1")[0] == 404
    events = api.drain_events()
    assert [e.revoked for e in events if isinstance(e, ComplianceAttestation)] == [
        False, False, True]


@pytest.mark.parametrize(("change", "words"), [
    ({"control_id": "no-such-control"}, "no automated control"),
    ({"expires_at": (datetime.now(UTC) + timedelta(days=5000)).isoformat()}, "three years"),
    ({"expires_at": "2031-01-01T00:00:00"}, "time zone"),
])
def test_an_invalid_exception_is_400(api: ControlApi, change: dict, words: str) -> None:  # type: ignore[type-arg]
    body = {"control_id": CONTROL, "reason": "because", "expires_at": LATER, **change}
    status, answer = call(api, "POST", "/exceptions", body=body)
    assert status == 400 and words in str(answer), answer


@pytest.mark.parametrize(("token", "method", "path", "expected"), [
    (None, "GET", "/runbooks", 401),
    ("view", "POST", "/runbooks", 403),
    ("op", "PUT", "/baselines/x", 403),
    ("view", "DELETE", "/ignores/abc", 403),
    ("view", "POST", "/exceptions", 403),
    ("view", "GET", "/baselines", 200),
    ("view", "GET", "/compliance/score", 200),
])
def test_the_access_policies_decide(api: ControlApi, token: str | None, method: str, path: str,
                                    expected: int) -> None:
    assert call(api, method, path, token, body={})[0] == expected


def test_score_and_findings(api: ControlApi) -> None:
    status, score = call(api, "GET", "/compliance/score", "view")
    assert status == 200 and score["score"] == 50.0 and score["standards"]["cis"]["failed"] == 1
    assert call(api, "GET", "/drift/findings", "view")[1] == {
        "findings": [{"resource_id": "vm-2", "severity": "HIGH"}]}
    assert score_of([])["score"] == 100.0
