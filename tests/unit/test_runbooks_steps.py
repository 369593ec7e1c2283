"""Step types against real things: subprocesses, local HTTP and ArgoCD servers, the seed."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

import httpx
import pytest

from runbooks.engine import Engine
from runbooks.interpolate import StaticSecrets
from runbooks.runtime import EngineConfig
from runbooks.timing import FakeClock
from schemas import Event, Outcome
from tests.unit.test_runbooks_support import book, local_server
from tests.unit.test_runbooks_validation import SEED, SEED_CONTEXT

TOKEN = "argo-token"


def engine(events: list[Event], **kw: Any) -> Engine:
    http = kw.pop("http", None)
    return Engine(
        EngineConfig(**kw),
        emit=events.append,
        http=http,
        secrets=StaticSecrets({"ARGO": TOKEN, "WRONG": "nope-nope"}),
    )


@pytest.fixture
def infra_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "fake_infra.jsonl"
    monkeypatch.setenv("NOVACRON_FAKE_INFRA_LOG", str(path))
    return path


def calls(path: Path) -> list[dict[str, Any]]:
    return [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []


async def test_command_runs_argv_and_reports_output(infra_log: Path) -> None:
    events: list[Event] = []
    rb = book(
        [
            {
                "id": "c",
                "action_type": "command",
                "action": "python -m runbooks.fake_infra scale --service=${svc} --delta=${d}",
            }
        ]
    )
    result = await engine(events).run(rb, {"svc": "web 1", "d": 2})
    assert result.ok and result.steps["c"].output["exit_code"] == 0
    assert [c["argv"] for c in calls(infra_log)] == [["scale", "--service=web 1", "--delta=2"]]


async def test_command_exit_codes_retry_or_not(infra_log: Path) -> None:
    events: list[Event] = []
    clock = FakeClock()
    rb = book(
        [
            {
                "id": "soft",
                "action_type": "command",
                "action": "python -m runbooks.fake_infra x --fail-with=3",
                "retry": {"max_attempts": 3, "backoff": "fixed", "base_delay": 1, "jitter": 0},
            },
            {
                "id": "hard",
                "action_type": "command",
                "action": "python -m runbooks.fake_infra y --fail-with=127",
                "retry": {"max_attempts": 3, "backoff": "fixed", "base_delay": 1, "jitter": 0},
            },
        ]
    )
    e = Engine(EngineConfig(), clock=clock, emit=events.append)
    result = await clock.run(e.run(rb, {}))
    verbs = [c["verb"] for c in calls(infra_log)]
    assert verbs.count("x") == 3 and verbs.count("y") == 1
    assert "exit code 3" in (result.steps["soft"].error or "")


async def test_command_timeout_kills_the_process(tmp_path: Path) -> None:
    marker = tmp_path / "late"
    script = f"import time; time.sleep(5); open({str(marker)!r}, 'w')"
    rb = book(
        [{"id": "c", "action_type": "command", "action": ["python", "-c", script], "timeout": 0.3}]
    )
    result = await engine([]).run(rb, {})
    assert result.steps["c"].status == "timed_out"
    assert not marker.exists()


async def test_missing_executable_is_not_retried() -> None:
    rb = book(
        [{"id": "c", "action_type": "command", "action": "no-such-binary-xyz", "retry_count": 3}]
    )
    result = await engine([]).run(rb, {})
    assert result.steps["c"].attempts == 1 and "cannot run" in (result.steps["c"].error or "")


async def test_http_and_notification_against_a_local_server() -> None:
    events: list[Event] = []
    with local_server() as (url, state):
        state.statuses = [503, 200]  # one transient failure, then success
        rb = book(
            [
                {
                    "id": "dns",
                    "action_type": "api",
                    "action": f"{url}/records/${{rid}}",
                    "parameters": {
                        "method": "PUT",
                        "data": {"target": "${ip}", "ttl": "${ttl}"},
                        "headers": {"X-Token": "${secret:ARGO}"},
                    },
                    "retry": {"max_attempts": 2, "base_delay": 0, "jitter": 0},
                },
                {
                    "id": "tell",
                    "action_type": "notification",
                    "action": "Moved ${rid} to <${ip}> by ${who}",
                    "dependencies": ["dns"],
                    "parameters": {"webhook_url": f"{url}/hook"},
                },
            ]
        )
        result = await engine(events).run(
            rb, {"rid": "a/b c", "ip": "10.0.0.2", "ttl": 60, "who": "<!channel> & co"}
        )
    assert result.ok
    put1, put2, hook = state.requests
    assert put1.method == put2.method == "PUT" and put2.path == "/records/a%2Fb%20c"
    assert put2.body == {"target": "10.0.0.2", "ttl": 60} and put2.headers["X-Token"] == TOKEN
    # only the inserted values are escaped: a value cannot ping @channel or forge a link
    assert hook.body == {"text": "Moved a/b c to <10.0.0.2> by &lt;!channel&gt; &amp; co"}
    dumped = "".join(e.model_dump_json() for e in events)
    assert TOKEN not in dumped


async def test_http_client_errors_are_not_retried() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(404, json={"error": "no such record"})

    http = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    rb = book(
        [{"id": "h", "action_type": "http", "action": "https://api.example/x", "retry_count": 3}]
    )
    result = await engine([], http=http).run(rb, {})
    assert len(seen) == 1 and "→ 404" in (result.steps["h"].error or "")


async def test_argocd_sync_status_rollback() -> None:
    with local_server() as (url, state):
        params = {"server": url, "app": "${app}", "token": "${secret:ARGO}"}
        rb = book(
            [
                {
                    "id": "create",
                    "action_type": "argocd",
                    "action": "create",
                    "parameters": {**params, "application": {"metadata": {"name": "${app}"}}},
                },
                {
                    "id": "sync",
                    "action_type": "argocd",
                    "action": "sync",
                    "dependencies": ["create"],
                    "parameters": {**params, "revision": "bbb222", "prune": True},
                },
                {
                    "id": "status",
                    "action_type": "argocd",
                    "action": "status",
                    "dependencies": ["sync"],
                    "parameters": {**params, "expect_sync": "Synced", "expect_health": "Healthy"},
                },
                {
                    "id": "back",
                    "action_type": "argocd",
                    "action": "rollback",
                    "dependencies": ["status"],
                    "parameters": {**params, "id": 1},
                },
            ]
        )
        result = await engine([]).run(rb, {"app": "novacron-prod"})
        app = state.apps["novacron-prod"]
    assert result.ok, result.steps
    assert result.steps["sync"].output["sync_status"] == "Synced"
    assert result.steps["status"].output["health_status"] == "Healthy"
    assert app["status"]["sync"]["revision"] == "aaa000"  # rolled back to history id 1
    sync_req = next(r for r in state.requests if r.path.endswith("/sync"))
    assert sync_req.body == {
        "name": "novacron-prod",
        "prune": True,
        "dryRun": False,
        "revision": "bbb222",
    }
    assert all(r.headers["Authorization"] == f"Bearer {TOKEN}" for r in state.requests)


async def test_argocd_bad_token_fails_without_retry() -> None:
    with local_server() as (url, state):
        rb = book(
            [
                {
                    "id": "s",
                    "action_type": "argocd",
                    "action": "status",
                    "retry_count": 3,
                    "parameters": {"server": url, "app": "x", "token": "${secret:WRONG}"},
                }
            ]
        )
        result = await engine([]).run(rb, {})
    assert len(state.requests) == 1 and "401" in (result.steps["s"].error or "")


def _fake_bin(folder: Path, name: str, log: Path) -> None:
    path = folder / name
    path.write_text(f'#!/bin/sh\necho "{name} $*" >> {log}\n')
    path.chmod(path.stat().st_mode | stat.S_IXUSR)


async def test_the_seed_runbook_runs_verbatim(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = tmp_path / "bin.log"
    for name in ("pg_isready", "pg_ctl"):
        _fake_bin(tmp_path, name, log)
    monkeypatch.setenv("PATH", f"{tmp_path}:{os.environ['PATH']}")
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"ok": True})

    http = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    events: list[Event] = []
    e = engine(events, http=http, default_webhook_url="https://hooks.slack.example/T/B/x")
    from runbooks.loader import load_text

    result = await e.run(load_text(SEED), {**SEED_CONTEXT, "new_primary": "db2.example.com"})
    assert result.ok and [s.status for s in result.steps.values()] == ["succeeded"] * 4
    assert log.read_text().splitlines() == [
        "pg_isready -h db1.example.com",
        "pg_ctl promote -D /var/lib/postgresql/data",
    ]
    # the seed's step-4 names no dependency, so it may run first: match by method
    (dns,) = [r for r in seen if r.method == "PUT"]
    (hook,) = [r for r in seen if r.method == "POST"]
    assert (dns.method, str(dns.url)) == ("PUT", "https://api.dns.com/records/12345")
    assert json.loads(dns.content) == {"target": "10.0.1.2"}
    assert json.loads(hook.content) == {
        "text": "Failover completed: db1.example.com -> db2.example.com"
    }
    finals = [e for e in events if isinstance(e, Outcome) and e.scope == "action"]
    assert [o.status for o in finals] == ["started", "succeeded"]
