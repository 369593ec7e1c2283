"""The seed's db-failover runbook, through the executor as an action runs it.

The real `pg_isready` and `psql` (postgresql-client) talk to local processes standing in for
the primary and the standby (tests/pg_standin.py speaks the PostgreSQL protocol); the DNS API
and the team's webhook are a local HTTP server. A dead or rejecting primary is failed over; a
healthy one is not, and neither is anything after a step that did not succeed.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agents.executor import Executor, ExecutorConfig, InMemoryJournal
from runbooks.engine import WorkflowResult
from runbooks.interpolate import StaticSecrets
from runbooks.resolve import RefusedAction
from schemas import Event, Outcome
from tests.unit.test_runbooks_support import ServerState, approved, local_server

STANDIN = Path(__file__).parents[1] / "pg_standin.py"
TOKEN = "dns-token-0123456789"
RUNBOOKS = {"db_failover": "db-failover"}
MISSING = [t for t in ("pg_isready", "psql") if shutil.which(t) is None]
if MISSING and os.environ.get("NOVACRON_REQUIRE_PG_CLIENT"):
    raise RuntimeError(f"{', '.join(MISSING)} not found and NOVACRON_REQUIRE_PG_CLIENT is set")
pytestmark = pytest.mark.skipif(
    bool(MISSING), reason=f"{', '.join(MISSING)} not found: install postgresql-client "
    "(deploy/local/install.sh does; CI sets NOVACRON_REQUIRE_PG_CLIENT so it never skips)")


class StandIn:
    """One stand-in server process: its port and the queries it saw."""

    def __init__(self, role: str, log: Path) -> None:
        self.log = log
        self.proc = subprocess.Popen([sys.executable, str(STANDIN), "--role", role,
                                      "--log", str(log)], stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        self.port = int(self.proc.stdout.readline())

    def kill(self) -> None:
        """The primary dies: SIGKILL, nothing listens on its port any more."""
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def queries(self) -> list[dict[str, Any]]:
        lines = self.log.read_text().splitlines() if self.log.exists() else []
        return [e for e in map(json.loads, lines) if "query" in e]

    def in_recovery(self) -> str:
        """Ask the server itself, with the real psql."""
        out = subprocess.run(["psql", "--host=127.0.0.1", f"--port={self.port}", "-U",
                              "postgres", "-d", "postgres", "-X", "-At", "-c",
                              "SELECT pg_is_in_recovery()"], capture_output=True, text=True,
                             check=True)
        return out.stdout.strip()


@pytest.fixture
def site(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[dict[str, Any]]:
    roles = getattr(request, "param", ("primary", "standby"))
    primary = StandIn(roles[0], tmp_path / "primary.jsonl")
    standby = StandIn(roles[1], tmp_path / "standby.jsonl")
    with local_server() as (url, state):
        yield {"primary": primary, "standby": standby, "url": url, "http": state}
    for server in (primary, standby):
        if server.proc.poll() is None:
            server.kill()


async def fail_over(site: dict[str, Any], action_id: str) -> tuple[WorkflowResult, list[Event]]:
    defaults = {
        "primary_host": "127.0.0.1", "primary_port": site["primary"].port,
        "new_primary": "127.0.0.1", "new_primary_port": site["standby"].port,
        "new_primary_ip": "10.0.1.2", "dns_api": site["url"] + "/dns/v1/",
        "record_id": "db-primary", "notify_webhook": site["url"] + "/hook",
    }
    events: list[Event] = []
    ex = Executor(ExecutorConfig(runbooks=RUNBOOKS, defaults=defaults),
                  journal=InMemoryJournal(), emit=events.append,
                  secrets=StaticSecrets({"DNS_API_TOKEN": TOKEN}))
    action = approved(ex.library, "db_failover", {}, RUNBOOKS, action_id=action_id,
                      resource_id="orders-db")
    try:
        return await ex.handle(action), events
    finally:
        await ex.aclose()


def requests(state: ServerState) -> list[tuple[str, str, Any]]:
    return [(r.method, r.path, r.body) for r in state.requests]


def final(events: list[Event]) -> Outcome:
    (out,) = [e for e in events if isinstance(e, Outcome) and e.scope == "action"
              and e.status not in ("started", "sla_breached")]
    return out


async def test_a_healthy_primary_is_not_failed_over_and_a_dead_one_is(
        site: dict[str, Any]) -> None:
    primary, standby, http = site["primary"], site["standby"], site["http"]
    result, events = await fail_over(site, "failover-1")
    assert result.status == "failed" and final(events).status == "failed"
    probe = result.steps["step-1"]
    assert probe.attempts == 1 and probe.error is not None  # healthy is definite: no retries
    assert "exit code 0 (expected 1, 2)" in probe.error and "accepting connections" in probe.error
    assert {s: r.status for s, r in result.steps.items()} == {
        "step-1": "failed", "step-2": "skipped", "step-3": "skipped", "step-4": "skipped"}
    assert standby.queries() == [] and standby.in_recovery() == "t" and http.requests == []

    primary.kill()
    result, events = await fail_over(site, "failover-2")
    assert result.status == "succeeded", result.error
    assert result.steps["step-1"].output["exit_code"] == 2  # no response
    (promote,) = [q for q in standby.queries() if "pg_promote" in q["query"]]
    assert "pg_promote(true, 60)" in promote["query"] and promote["in_recovery_before"]
    assert standby.in_recovery() == "f"  # the standby says it is a primary now
    assert requests(http) == [
        ("PUT", "/dns/v1/records/db-primary", {"target": "10.0.1.2"}),
        ("POST", "/hook", {"text": "Failover completed: 127.0.0.1 -> 127.0.0.1"}),
    ]
    assert http.requests[0].headers["Authorization"] == f"Bearer {TOKEN}"
    assert all(TOKEN not in e.model_dump_json() for e in events)


@pytest.mark.parametrize("site", [("rejecting", "standby")], indirect=True)
async def test_a_primary_that_rejects_connections_is_failed_over(site: dict[str, Any]) -> None:
    result, _ = await fail_over(site, "failover-r")
    assert result.status == "succeeded", result.error
    assert result.steps["step-1"].output["exit_code"] == 1
    assert site["standby"].in_recovery() == "f" and len(site["http"].requests) == 2


@pytest.mark.parametrize("site", [("rejecting", "stuck")], indirect=True)
async def test_a_promotion_that_does_not_complete_fails_before_dns_moves(
        site: dict[str, Any]) -> None:
    result, events = await fail_over(site, "failover-s")
    assert result.status == "failed"
    assert "critical step step-2 failed" in (final(events).error or "")
    assert "standby not promoted within 60 s" in (result.steps["step-2"].error or "")
    assert site["http"].requests == []  # DNS untouched, no "completed" message


@pytest.mark.parametrize("site", [("rejecting", "standby")], indirect=True)
async def test_a_dns_update_the_api_refuses_fails_the_failover(site: dict[str, Any]) -> None:
    site["http"].statuses = [404]
    result, events = await fail_over(site, "failover-d")
    assert result.status == "failed" and final(events).status == "failed"
    assert "critical step step-3 failed" in (result.error or "") and "404" in (result.error or "")
    assert result.steps["step-4"].status == "skipped"
    assert requests(site["http"]) == [
        ("PUT", "/dns/v1/records/db-primary", {"target": "10.0.1.2"})]  # no "completed" message


def test_events_choose_no_host_record_or_endpoint_of_the_failover() -> None:
    from runbooks.loader import Library
    from runbooks.resolve import Resolver

    resolver = Resolver(Library().get, RUNBOOKS)
    for name, value in (("primary_host", "evil.example"), ("dns_api", "https://evil.example"),
                        ("record_id", "../admin"), ("new_primary_ip", "6.6.6.6"),
                        ("pg_user", "attacker")):
        with pytest.raises(RefusedAction, match=name):
            resolver.resolve("db_failover", {name: value})
